//! Strict loading from real files, right and wrong. The files in `fixtures/checkpoints/` are
//! written by `make_checkpoints.py` beside this test; the broken ones below are made from
//! them at run time.

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use convnets_core::Error;
use convnets_core::checkpoint::{Checkpoint, IDENTITY, KeyMap, KeyRule, sha256_file};
use convnets_core::layers::{Activation, BatchNormConfig, Conv2dConfig, ConvNormAct, Linear};
use convnets_core::procedural;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checkpoints")
        .join(name)
}

/// A scratch directory unique to one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convnets-core-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// TinyNet of make_checkpoints.py.
#[derive(Debug)]
struct TinyNet {
    block: ConvNormAct,
    fc: Linear,
}

impl TinyNet {
    fn new(vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        Ok(Self {
            block: ConvNormAct::new(
                3,
                4,
                Conv2dConfig::new(3).padding(1),
                BatchNormConfig::new(),
                Activation::Relu,
                vb.pp("conv"),
                vb.pp("bn"),
            )?,
            fc: Linear::new(4, 2, vb.pp("fc"))?,
        })
    }

    fn logits(&self) -> Result<Vec<f32>> {
        let x = procedural::tensor("tiny.input", &[1, 3, 5, 5], -2.0, 2.0, &Device::Cpu)?;
        let y = self.block.forward_t(&x, false)?.mean((2, 3))?;
        Ok(self.fc.forward(&y)?.flatten_all()?.to_vec1()?)
    }
}

/// `model(x)` in make_checkpoints.py.
const LOGITS: [f64; 2] = [0.21002197265625, -0.06580410152673721];

fn load(path: &Path) -> convnets_core::Result<TinyNet> {
    Checkpoint::open(path)?.load(&IDENTITY, DType::F32, &Device::Cpu, TinyNet::new)
}

fn assert_logits(net: &TinyNet, tol: f64) -> Result<()> {
    let got = net.logits()?;
    for (g, w) in got.iter().zip(LOGITS) {
        assert!((f64::from(*g) - w).abs() <= tol, "{got:?} vs {LOGITS:?}");
    }
    Ok(())
}

#[test]
fn pth_and_safetensors_load_to_the_same_model() -> Result<()> {
    for file in ["state_dict.pth", "wrapped.pth", "state_dict.safetensors"] {
        assert_logits(&load(&fixture(file))?, 1e-6)?;
    }
    Ok(())
}

/// f16 and bf16 files load as the f32 weights rounded to half precision, bit for bit: the
/// conversion adds nothing to the rounding the file itself did (make_checkpoints.py writes
/// them with `v.to(dtype)` from the f32 weights).
#[test]
fn half_precision_files_are_converted() -> Result<()> {
    let full = Checkpoint::open(fixture("state_dict.safetensors"))?;
    let floats: Vec<(String, Vec<usize>)> = full
        .names()
        .into_iter()
        .filter_map(|name| match full.info(&name) {
            Some((shape, dtype)) if dtype == "F32" => Some((name, shape)),
            _ => None,
        })
        .collect();
    assert_eq!(floats.len(), 7, "every float tensor of TinyNet");
    let bits = |t: &Tensor| -> Result<Vec<u32>> {
        let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
        Ok(values.into_iter().map(f32::to_bits).collect())
    };
    for (file, half) in [
        ("state_dict_f16.safetensors", DType::F16),
        ("state_dict_bf16.safetensors", DType::BF16),
    ] {
        let ckpt = Checkpoint::open(fixture(file))?;
        let loaded = ckpt.load(&IDENTITY, DType::F32, &Device::Cpu, |vb| {
            floats
                .iter()
                .map(|(name, shape)| vb.get(shape.clone(), name))
                .collect::<candle_core::Result<Vec<_>>>()
        })?;
        let mut rounded = 0;
        for ((name, _), got) in floats.iter().zip(&loaded) {
            assert_eq!(got.dtype(), DType::F32, "{file}: {name}");
            let exact = full.tensor(name)?;
            let want = exact.to_dtype(half)?.to_dtype(DType::F32)?;
            assert_eq!(bits(got)?, bits(&want)?, "{file}: {name}");
            rounded += usize::from(bits(&want)? != bits(&exact)?);
        }
        // Otherwise loading the f32 file by mistake would pass too.
        assert_eq!(rounded, floats.len(), "{file}: the rounding must show");
    }
    Ok(())
}

#[test]
fn a_pth_that_is_not_a_state_dict_is_refused_by_name() {
    for file in ["whole_model.pth", "list.pth"] {
        let err = Checkpoint::open(fixture(file)).expect_err(file).to_string();
        assert!(
            err.contains(file) && err.contains("not a state dict"),
            "{err}"
        );
    }
}

/// torchvision's oldest files (GoogLeNet's) are in PyTorch's pre-1.6 format.
#[test]
fn a_legacy_pth_loads_to_the_same_model() -> Result<()> {
    let legacy = Checkpoint::open(fixture("legacy.pth"))?;
    let zip = Checkpoint::open(fixture("state_dict.pth"))?;
    assert_eq!(legacy.names(), zip.names());
    for name in zip.names() {
        assert_eq!(legacy.info(&name), zip.info(&name), "{name}");
        let (a, b) = (legacy.tensor(&name)?, zip.tensor(&name)?);
        assert_eq!(a.dtype(), b.dtype());
        assert_eq!(
            a.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?,
            b.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?,
            "{name}"
        );
    }
    assert_logits(&load(&fixture("legacy.pth"))?, 1e-6)?;

    // Views into one storage (the offset counts), and half precision.
    let views = Checkpoint::open(fixture("legacy_views.pth"))?;
    let view: Vec<Vec<f32>> = views.tensor("view")?.to_vec2()?;
    assert_eq!(view[0], [6.0, 7.0, 8.0, 9.0]);
    assert_eq!(view[2], [14.0, 15.0, 16.0, 17.0]);
    assert_eq!(views.tensor("base")?.to_vec1::<f32>()?[23], 23.0);
    let half = views.tensor("half")?;
    assert_eq!(half.dtype(), DType::F16);
    assert_eq!(
        half.to_dtype(DType::F32)?.to_vec1::<f32>()?,
        [0.0, 1.0, 2.0, 3.0, 4.0]
    );

    // Cut short, it is refused by name.
    let bytes = std::fs::read(fixture("legacy.pth"))?;
    let dir = std::env::temp_dir().join(format!("convnets-legacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cut = dir.join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() - 100])?;
    let err = Checkpoint::open(&cut).expect_err("truncated").to_string();
    assert!(
        err.contains("cut.pth") && err.contains("truncated"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A file cut short inside its data is refused naming the first tensor whose bytes are
/// missing; one cut inside its header says so. `state_dict.safetensors` has a 536-byte header
/// and 544 bytes of data, `bn.num_batches_tracked` first and `fc.weight` last.
#[test]
fn a_truncated_safetensors_file_is_refused_by_name() -> Result<()> {
    let bytes = std::fs::read(fixture("state_dict.safetensors"))?;
    assert_eq!(
        bytes.len(),
        8 + 536 + 544,
        "the fixture changed: update the cuts"
    );
    let dir = scratch("truncated");
    let data = |n: usize| 8 + 536 + n;
    let cuts = [
        (bytes.len() - 1, "tensor `fc.weight`"),
        (data(511), "tensor `fc.bias`"),
        (data(100), "tensor `conv.weight`"),
        (data(0), "tensor `bn.num_batches_tracked`"),
        (300, "header"),
        (12, "header"),
        (3, "header"),
        (0, "header"),
    ];
    for (keep, names) in cuts {
        let path = dir.join(format!("cut{keep}.safetensors"));
        std::fs::write(&path, &bytes[..keep])?;
        let err = Checkpoint::open(&path).expect_err("truncated").to_string();
        assert!(err.contains(&format!("cut{keep}.safetensors")), "{err}");
        assert!(err.contains(names), "cut at {keep}: {err}");
    }
    Ok(())
}

/// A safetensors file with a hand-written header.
fn write_raw(path: &Path, header: &str, data_len: usize) -> Result<()> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, data_len));
    std::fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn a_header_that_lies_about_offsets_is_refused() -> Result<()> {
    let dir = scratch("lying");
    // Header, bytes of data, what the error must say.
    let cases = [
        // Offsets past the end of the data.
        (
            r#"{"a":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}}"#,
            8,
            &[
                "tensor `a`",
                "[0, 64]",
                "past the end of the data (8 bytes)",
            ][..],
        ),
        // Offsets that disagree with shape × dtype size, either way.
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,64]}}"#,
            8,
            &["tensor `a`", "64 bytes", "needs 8"],
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#,
            8,
            &["tensor `a`", "8 bytes", "needs 16"],
        ),
        // Overlapping tensors.
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
            &["tensor `b`", "overlap `a`"],
        ),
        // A gap between tensors.
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#,
            20,
            &["tensor `b`", "4 bytes after `a`"],
        ),
        // Offsets that end before they start.
        (
            r#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#,
            8,
            &["tensor `a`", "[8, 0]"],
        ),
        // A dtype safetensors does not know.
        (
            r#"{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#,
            8,
            &["tensor `a`", "F33"],
        ),
        // Data that no tensor claims.
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            12,
            &["4 bytes of data follow the last tensor `a`"],
        ),
        // Not JSON.
        ("{not json", 0, &["header"]),
    ];
    for (i, (header, len, says)) in cases.iter().enumerate() {
        let path = dir.join(format!("lying{i}.safetensors"));
        write_raw(&path, header, *len)?;
        let err = Checkpoint::open(&path).expect_err(header).to_string();
        assert!(err.contains(&format!("lying{i}.safetensors")), "{err}");
        for part in *says {
            assert!(err.contains(part), "{header}: `{part}` not in: {err}");
        }
    }
    Ok(())
}

#[test]
fn an_integer_weight_is_reported_with_its_name() {
    let err = load(&fixture("int_weight.safetensors"))
        .expect_err("int weight")
        .to_string();
    assert!(err.contains("int_weight.safetensors"), "{err}");
    assert!(err.contains("invalid:     conv.weight: dtype I64"), "{err}");
}

/// Writes TinyNet's tensors, changed by `edit`, to a safetensors file.
fn edited(test: &str, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> Result<PathBuf> {
    let ckpt = Checkpoint::open(fixture("state_dict.safetensors"))?;
    let mut tensors: Vec<(String, Tensor)> = ckpt
        .names()
        .into_iter()
        .map(|n| ckpt.tensor(&n).map(|t| (n, t)))
        .collect::<Result<_, _>>()?;
    edit(&mut tensors);
    let path = scratch(test).join("edited.safetensors");
    candle_core::safetensors::save(&tensors.into_iter().collect(), &path)?;
    Ok(path)
}

#[test]
fn missing_extra_and_mis_shaped_tensors_are_all_reported_at_once() -> Result<()> {
    let path = edited("mismatch", |ts| {
        ts.retain(|(n, _)| n != "bn.running_var" && n != "fc.bias");
        ts.push((
            "head.weight".into(),
            Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap(),
        ));
        for (n, t) in ts.iter_mut() {
            if n == "fc.weight" {
                *t = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
            }
        }
    })?;
    let err = load(&path).expect_err("mismatch");
    let Error::Mismatch(m) = &err else {
        panic!("expected a mismatch report, got {err}");
    };
    assert_eq!(m.missing, ["bn.running_var", "fc.bias"]);
    assert_eq!(m.unexpected, ["head.weight"]);
    assert_eq!(
        m.mis_shaped,
        [("fc.weight".to_string(), vec![2, 4], vec![3, 4])]
    );
    let msg = err.to_string();
    assert!(
        msg.contains("edited.safetensors") && msg.contains("2 missing, 1 unexpected, 1 mis-shaped"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn num_batches_tracked_is_unused_only_where_the_key_map_says_so() -> Result<()> {
    const STRICT: KeyMap = KeyMap {
        name: "no-rules",
        rules: &[],
    };
    let ckpt = Checkpoint::open(fixture("state_dict.pth"))?;
    let err = ckpt
        .load(&STRICT, DType::F32, &Device::Cpu, TinyNet::new)
        .expect_err("strict");
    assert!(
        err.to_string()
            .contains("unexpected:  bn.num_batches_tracked"),
        "{err}"
    );
    ckpt.load(&IDENTITY, DType::F32, &Device::Cpu, TinyNet::new)?;
    Ok(())
}

#[test]
fn key_maps_rename_and_reshape() -> Result<()> {
    // A file in another naming, with the linear weight stored as a 1×1 convolution.
    let path = edited("renamed", |ts| {
        for (n, t) in ts.iter_mut() {
            if let Some(rest) = n.strip_prefix("fc.").map(str::to_string) {
                *n = format!("head.proj.{rest}");
                if rest == "weight" {
                    *t = t.reshape((2, 4, 1, 1)).unwrap();
                }
            }
        }
    })?;
    const MAP: KeyMap = KeyMap {
        name: "test-source",
        rules: &[
            KeyRule::Rename {
                from: "head.proj.*",
                to: "fc.*",
            },
            KeyRule::Reshape {
                pattern: "fc.weight",
            },
            convnets_core::checkpoint::UNUSED_NUM_BATCHES_TRACKED,
        ],
    };
    let net = Checkpoint::open(&path)?.load(&MAP, DType::F32, &Device::Cpu, TinyNet::new)?;
    assert_logits(&net, 1e-6)?;
    // Without the reshape rule the 1×1 conv shape is a mismatch that names the tensor.
    const NO_RESHAPE: KeyMap = KeyMap {
        name: "test-source",
        rules: &[
            KeyRule::Rename {
                from: "head.proj.*",
                to: "fc.*",
            },
            convnets_core::checkpoint::UNUSED_NUM_BATCHES_TRACKED,
        ],
    };
    let err = Checkpoint::open(&path)?
        .load(&NO_RESHAPE, DType::F32, &Device::Cpu, TinyNet::new)
        .expect_err("shape")
        .to_string();
    assert!(
        err.contains("mis-shaped:  fc.weight: model needs [2, 4], file has [2, 4, 1, 1]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_checksum_mismatch_refuses_the_file() -> Result<()> {
    let path = fixture("state_dict.safetensors");
    let good = sha256_file(&path)?;
    Checkpoint::open_verified(&path, &good.to_uppercase())?;
    let mut bad = good.clone().into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad)?;
    let err = Checkpoint::open_verified(&path, &bad)
        .expect_err("checksum")
        .to_string();
    assert!(
        err.contains("state_dict.safetensors")
            && err.contains("sha256 mismatch")
            && err.contains(&good),
        "{err}"
    );
    Ok(())
}

#[test]
fn load_trainable_registers_every_parameter() -> Result<()> {
    let varmap = VarMap::new();
    let ckpt = Checkpoint::open(fixture("state_dict.pth"))?;
    let net = ckpt.load_trainable(&IDENTITY, &varmap, DType::F32, &Device::Cpu, TinyNet::new)?;
    assert_logits(&net, 1e-6)?;
    let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "conv.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    Ok(())
}

#[test]
fn a_file_that_is_no_checkpoint_says_what_it_is() -> Result<()> {
    let path = scratch("garbage").join("model.safetensors");
    std::fs::write(&path, b"GIF89a not a checkpoint")?;
    let err = Checkpoint::open(&path).expect_err("garbage").to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("neither safetensors nor"),
        "{err}"
    );
    let err = Checkpoint::open(path.with_file_name("absent.pth"))
        .expect_err("absent")
        .to_string();
    assert!(err.contains("absent.pth"), "{err}");
    Ok(())
}
