//! Real checkpoint files: a CIFAR ResNet-20 saved by PyTorch with
//! `torch.save(model.state_dict())` and with `safetensors.torch.save_file`
//! (tests/parity/checkpoints, written by `python tests/parity/ref_resnet.py`) loads into
//! [`ResNet`] without renaming a key and gives PyTorch's logits; a file with one tensor
//! missing or one too many is refused, naming it, in either format.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarMap};
use convnets_core::checkpoint::{Checkpoint, KeyMap};
use convnets_core::parity::Fixture;
use convnets_resnet::weights::{CIFAR_LINEAR, TORCHVISION};
use convnets_resnet::{ResNet, ResNetConfig, Stem};
use convnets_workspace_tests::root;

fn checkpoint_file(ext: &str) -> PathBuf {
    root()
        .join("tests/parity/checkpoints")
        .join(format!("resnet20_cifar.{ext}"))
}

/// The logits PyTorch computed with these weights, and the inputs it computed them for.
fn expected() -> Result<Fixture> {
    Ok(Fixture::load(checkpoint_file("json"))?)
}

fn load(path: &PathBuf) -> Result<ResNet> {
    load_with(path, &TORCHVISION)
}

fn load_with(path: &PathBuf, key_map: &KeyMap) -> Result<ResNet> {
    Ok(
        Checkpoint::open(path)?.load(key_map, DType::F32, &Device::Cpu, |vb| {
            ResNet::new(&ResNetConfig::resnet20(), vb)
        })?,
    )
}

fn logits(model: &ResNet, fixture: &Fixture) -> Result<Tensor> {
    Ok(model.forward_t(&fixture.input(DType::F32, &Device::Cpu)?, false)?)
}

#[test]
fn a_torch_save_state_dict_loads_and_matches_pytorch() -> Result<()> {
    let fixture = expected()?;
    let model = load(&checkpoint_file("pth"))?;
    let report = fixture.check(&logits(&model, &fixture)?)?;
    eprintln!("resnet20 .pth: max abs err {:.2e}", report.max_abs_err);
    Ok(())
}

#[test]
fn a_safetensors_file_loads_and_matches_pytorch() -> Result<()> {
    let fixture = expected()?;
    let from_st = logits(&load(&checkpoint_file("safetensors"))?, &fixture)?;
    let report = fixture.check(&from_st)?;
    eprintln!(
        "resnet20 .safetensors: max abs err {:.2e}",
        report.max_abs_err
    );
    // The two files hold the same tensors: the same logits, bit for bit.
    let from_pth = logits(&load(&checkpoint_file("pth"))?, &fixture)?;
    let diff = (from_st - from_pth)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    Ok(())
}

/// The safetensors file's tensors, edited by `edit`, written to a temporary file.
fn edited_copy(name: &str, edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> Result<PathBuf> {
    let ckpt = Checkpoint::open(checkpoint_file("safetensors"))?;
    let mut tensors = ckpt
        .names()
        .into_iter()
        .map(|n| Ok((n.clone(), ckpt.tensor(&n)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    edit(&mut tensors);
    let path = std::env::temp_dir().join(format!(
        "convnets-resnet-{}-{name}.safetensors",
        std::process::id()
    ));
    candle_core::safetensors::save(&tensors, &path)?;
    Ok(path)
}

#[test]
fn a_missing_or_extra_tensor_is_refused_by_name() -> Result<()> {
    let missing = edited_copy("missing", |t| {
        t.remove("layer2.0.bn1.running_var");
    })?;
    let err = load(&missing).expect_err("a checkpoint without a running variance must fail");
    std::fs::remove_file(&missing)?;
    let msg = err.to_string();
    assert!(
        msg.contains("missing:     layer2.0.bn1.running_var"),
        "{msg}"
    );
    assert!(msg.contains("1 missing, 0 unexpected"), "{msg}");

    let extra = edited_copy("extra", |t| {
        let w = t["layer3.2.conv2.weight"].clone();
        t.insert("layer4.0.conv1.weight".into(), w);
    })?;
    let err = load(&extra).expect_err("a checkpoint with a foreign tensor must fail");
    std::fs::remove_file(&extra)?;
    let msg = err.to_string();
    assert!(msg.contains("unexpected:  layer4.0.conv1.weight"), "{msg}");
    assert!(msg.contains("0 missing, 1 unexpected"), "{msg}");
    Ok(())
}

/// The narrow CIFAR ResNet-8 (n = 1, 4/8/16 filters) of `resnet8_narrow_{missing,extra}.pth`,
/// which `ref_resnet.py` wrote with `torch.save(state_dict)`, one tensor removed or added.
const RESNET8_NARROW: ResNetConfig = ResNetConfig {
    depths: &[1, 1, 1],
    widths: &[4, 8, 16],
    stem: Stem {
        width: 4,
        ..Stem::CIFAR
    },
    ..ResNetConfig::resnet20()
};

/// Why loading `resnet8_narrow_<name>.pth` fails.
fn refusal_of_narrow_pth(name: &str) -> Result<String> {
    let path = root()
        .join("tests/parity/checkpoints")
        .join(format!("resnet8_narrow_{name}.pth"));
    let loaded = Checkpoint::open(&path)?.load(&TORCHVISION, DType::F32, &Device::Cpu, |vb| {
        ResNet::new(&RESNET8_NARROW, vb)
    });
    match loaded {
        Ok(_) => anyhow::bail!("{} loaded", path.display()),
        Err(e) => Ok(e.to_string()),
    }
}

#[test]
fn a_torch_save_file_with_a_missing_or_extra_tensor_is_refused_by_name() -> Result<()> {
    let msg = refusal_of_narrow_pth("missing")?;
    assert!(
        msg.contains("missing:     layer2.0.bn1.running_var"),
        "{msg}"
    );
    assert!(msg.contains("1 missing, 0 unexpected"), "{msg}");

    let msg = refusal_of_narrow_pth("extra")?;
    assert!(msg.contains("unexpected:  layer4.0.conv1.weight"), "{msg}");
    assert!(msg.contains("0 missing, 1 unexpected"), "{msg}");
    Ok(())
}

#[test]
fn a_cifar_resnet_calling_its_classifier_linear_loads_through_its_key_map() -> Result<()> {
    // The common PyTorch CIFAR ResNet's naming: `linear.*` where the zoo has `fc.*`.
    let path = edited_copy("linear", |t| {
        for p in ["weight", "bias"] {
            let w = t.remove(&format!("fc.{p}")).expect("the file has an fc");
            t.insert(format!("linear.{p}"), w);
        }
    })?;
    let refused = load(&path);
    let mapped = load_with(&path, &CIFAR_LINEAR);
    std::fs::remove_file(&path)?;

    let msg = refused
        .err()
        .context("`linear.*` loaded without the key map")?
        .to_string();
    assert!(msg.contains("missing:     fc.weight"), "{msg}");
    assert!(msg.contains("unexpected:  linear.weight"), "{msg}");
    assert!(msg.contains("2 missing, 2 unexpected"), "{msg}");

    // Through the map: PyTorch's logits, and the same bits as the file with `fc`.
    let fixture = expected()?;
    let from_linear = logits(&mapped?, &fixture)?;
    fixture.check(&from_linear)?;
    let from_fc = logits(&load(&checkpoint_file("safetensors"))?, &fixture)?;
    let diff = (from_linear - from_fc)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    Ok(())
}

#[test]
fn loaded_weights_train_and_save_back() -> Result<()> {
    // Fine-tuning starts from the file: the loaded tensors are the VarMap's variables, and
    // what `VarMap::save` writes loads back into the same model.
    let fixture = expected()?;
    let varmap = VarMap::new();
    let model = Checkpoint::open(checkpoint_file("pth"))?.load_trainable(
        &TORCHVISION,
        &varmap,
        DType::F32,
        &Device::Cpu,
        |vb| ResNet::new(&ResNetConfig::resnet20(), vb),
    )?;
    let before = logits(&model, &fixture)?;
    fixture.check(&before)?;
    let path = std::env::temp_dir().join(format!(
        "convnets-resnet-{}-roundtrip.safetensors",
        std::process::id()
    ));
    varmap.save(&path)?;
    // Reloaded as trainable too: variables take the training convolution path (im2col),
    // whose rounding differs from candle's inference kernel in the last bit.
    let reloaded = Checkpoint::open(&path)?
        .load_trainable(
            &TORCHVISION,
            &VarMap::new(),
            DType::F32,
            &Device::Cpu,
            |vb| ResNet::new(&ResNetConfig::resnet20(), vb),
        )
        .context("reloading what VarMap::save wrote")?;
    std::fs::remove_file(&path)?;
    let diff = (logits(&reloaded, &fixture)? - before)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    Ok(())
}
