//! The family's models without reference logits: parameter counts against the published
//! ones, what loads into a model with and without auxiliary classifiers, and the
//! normalisation each pretrained file is evaluated with. Numerical parity with torchvision,
//! timm and onnxruntime is `tests/parity_inception.rs` at the workspace root.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use convnets_core::Classifier;
use convnets_core::checkpoint::{Checkpoint, IDENTITY};
use convnets_core::spec::{EvalTransform, INCEPTION_MEAN, INCEPTION_STD, Interpolation};
use convnets_inception::weights::{self, CAFFE_ONNX, TORCHVISION, WEIGHTS};
use convnets_inception::{
    GoogLeNetConfig, Inception, InceptionResNetV2Config, InceptionV3Config, InceptionV4Config,
    Network, TransformInput,
};

/// A `VarBuilder` backend that hands out zeros and keeps what it handed out: building a
/// model through it lists the model's tensors (and is much faster than initialising them).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<HashMap<String, Tensor>>>);

impl SimpleBackend for Recorder {
    fn get(&self, shape: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let t = Tensor::zeros(shape, dtype, dev)?;
        self.0
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        candle_core::bail!("`{name}`: the recorder needs shapes")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        false
    }
}

/// Builds `net`; returns its tensors by name.
fn build(net: impl Into<Network>) -> HashMap<String, Tensor> {
    let recorder = Recorder::default();
    let vb = VarBuilder::from_backend(Box::new(recorder.clone()), DType::F32, Device::Cpu);
    Inception::new(net, vb).expect("the model builds");
    recorder.0.lock().expect("not poisoned").clone()
}

/// Parameters as PyTorch counts them: every tensor but BatchNorm's running statistics.
fn num_params(tensors: &HashMap<String, Tensor>) -> usize {
    tensors
        .iter()
        .filter(|(name, _)| !name.ends_with("running_mean") && !name.ends_with("running_var"))
        .map(|(_, t)| t.elem_count())
        .sum()
}

#[test]
fn parameter_counts_equal_the_references_and_the_weight_specs() {
    let googlenet = GoogLeNetConfig::googlenet();
    let v3 = InceptionV3Config::inception_v3();
    let spec = |arch: &str| WEIGHTS.iter().find(|s| s.arch == arch).unwrap().num_params;
    // torchvision: sum(p.numel() for p in model.parameters()), with and without aux heads.
    // Its googlenet() drops the file's untrained aux heads, its inception_v3() keeps the
    // trained one, and the weight specs count those models.
    assert_eq!(num_params(&build(googlenet)), 13_004_888);
    let n = num_params(&build(googlenet.with_aux_logits(false)));
    assert_eq!((n, spec("googlenet")), (6_624_904, 6_624_904));
    let n = num_params(&build(v3));
    assert_eq!((n, spec("inception_v3")), (27_161_264, 27_161_264));
    assert_eq!(num_params(&build(v3.with_aux_logits(false))), 23_834_568);
    // Caffe's bvlc_googlenet deploy network (the ONNX graph's initialisers), and with the
    // two auxiliary heads of its train_val network (each 1×1 conv 128, fc 1024, classifier).
    let paper = GoogLeNetConfig::paper();
    assert_eq!(num_params(&build(paper.with_aux_logits(false))), 6_998_552);
    assert_eq!(num_params(&build(paper)), 6_998_552 + 3_188_840 + 3_190_888);
    // timm.
    let n = num_params(&build(InceptionV4Config::inception_v4()));
    assert_eq!((n, spec("inception_v4")), (42_679_816, 42_679_816));
    let n = num_params(&build(InceptionResNetV2Config::inception_resnet_v2()));
    assert_eq!((n, spec("inception_resnet_v2")), (55_843_464, 55_843_464));
    for spec in WEIGHTS {
        assert_eq!(
            spec.id.split_once('.').map(|(arch, _)| arch),
            Some(spec.arch)
        );
    }
}

#[test]
fn auxiliary_classifiers_are_optional_when_loading() {
    let dev = Device::Cpu;
    let googlenet = GoogLeNetConfig::googlenet();
    let full = Checkpoint::from_tensors("with aux", build(googlenet));
    let inference_only =
        Checkpoint::from_tensors("without aux", build(googlenet.with_aux_logits(false)));
    let load = |ckpt: &Checkpoint, map, net: GoogLeNetConfig| {
        ckpt.load(map, DType::F32, &dev, |vb| Inception::new(net, vb))
    };

    // Without auxiliary heads: both files load through the torchvision key map.
    let no_aux = googlenet.with_aux_logits(false);
    assert!(!load(&full, &TORCHVISION, no_aux).unwrap().has_aux_logits());
    assert!(
        !load(&inference_only, &TORCHVISION, no_aux)
            .unwrap()
            .has_aux_logits()
    );
    // With them: the full file loads, and every auxiliary tensor it has is used.
    assert!(
        load(&full, &TORCHVISION, googlenet)
            .unwrap()
            .has_aux_logits()
    );
    // An inference-only file cannot give a model its auxiliary heads: they are missing.
    let err = load(&inference_only, &TORCHVISION, googlenet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing:     aux1.fc2.weight"), "{err}");
    assert!(
        err.contains("missing:     aux2.conv.bn.running_var"),
        "{err}"
    );
    // A strict map without the torchvision rules would refuse the full file's aux tensors.
    let err = load(&full, &IDENTITY, no_aux).unwrap_err().to_string();
    assert!(err.contains("unexpected:  aux1.conv.conv.weight"), "{err}");
}

/// What the network sees for a pixel `p` of channel `c` once `transform` has normalised it and
/// the model's `transform_input` (if any) has mapped it.
fn seen(transform: &EvalTransform, map: Option<TransformInput>, c: usize, p: f64) -> f64 {
    let x = (p - f64::from(transform.mean[c])) / f64::from(transform.std[c]);
    match map {
        Some(m) => x * m.scale[c] + m.shift[c],
        None => x,
    }
}

#[test]
fn every_pretrained_network_sees_minus_one_to_one_exactly_once() {
    let timm_style = EvalTransform::timm(299, 0.875, Interpolation::Bicubic)
        .normalize(INCEPTION_MEAN, INCEPTION_STD);
    let tv_style = EvalTransform::torchvision(342, 299);
    for spec in WEIGHTS {
        let net = weights::network_for(spec).unwrap();
        // The spec's own transform: torchvision's files get torchvision's map, timm's none.
        let expected = match spec.arch {
            "googlenet" | "inception_v3" => Some(TransformInput::TORCHVISION),
            _ => None,
        };
        assert_eq!(net.transform_input, expected, "{}", spec.id);
        // Whatever transform a user evaluates with, the map derived from it completes it to
        // (p - 0.5) / 0.5, and nothing else does.
        for t in [spec.transform, timm_style, tv_style] {
            let map = TransformInput::for_eval_transform(&t).unwrap();
            for c in 0..3 {
                for p in [0.0, 0.2, 0.5, 0.9, 1.0] {
                    let y = seen(&t, map, c, p);
                    assert!(
                        (y - (p - 0.5) / 0.5).abs() < 1e-6,
                        "{} {c} {p}: {y}",
                        spec.id
                    );
                }
            }
        }
    }
    // The trap, for the record: torchvision's map after timm's normalisation, or none after
    // torchvision's, is off by much more than any rounding.
    let double = seen(&timm_style, Some(TransformInput::TORCHVISION), 0, 1.0);
    let never = seen(&tv_style, None, 0, 1.0);
    assert!((double - 1.0).abs() > 0.5 && (never - 1.0).abs() > 0.5);
}

#[test]
fn transform_input_computes_what_torchvision_does() {
    // torchvision: x[:, c] * (std[c] / 0.5) + (mean[c] - 0.5) / 0.5.
    let x = Tensor::new(&[1.0f32, -2.0, 0.5], &Device::Cpu)
        .unwrap()
        .reshape((1, 3, 1, 1))
        .unwrap();
    let y: Vec<f32> = TransformInput::TORCHVISION
        .apply(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want = [
        1.0f32 * 0.458 - 0.03,
        -2.0 * 0.448 + (0.456 - 0.5) / 0.5,
        0.5 * 0.45 + (0.406 - 0.5) / 0.5,
    ];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{y:?} vs {want:?}");
    }
}

#[test]
fn caffe_onnx_names_map_to_the_module_tree() {
    let cases = [
        ("conv1/7x7_s2_w_0", "conv1.conv.weight"),
        ("conv2/3x3_reduce_b_0", "conv2.conv.bias"),
        ("conv2/3x3_w_0", "conv3.conv.weight"),
        ("inception_3a/1x1_w_0", "inception3a.branch1.conv.weight"),
        (
            "inception_4e/3x3_reduce_w_0",
            "inception4e.branch2.0.conv.weight",
        ),
        ("inception_4e/3x3_b_0", "inception4e.branch2.1.conv.bias"),
        (
            "inception_5b/5x5_reduce_b_0",
            "inception5b.branch3.0.conv.bias",
        ),
        ("inception_4a/5x5_w_0", "inception4a.branch3.1.conv.weight"),
        (
            "inception_3b/pool_proj_w_0",
            "inception3b.branch4.1.conv.weight",
        ),
        ("loss3/classifier_w_0", "fc.weight"),
    ];
    for (onnx, ours) in cases {
        assert_eq!(CAFFE_ONNX.rename(onnx).unwrap().as_deref(), Some(ours));
    }
    assert!(CAFFE_ONNX.may_reshape("fc.weight"));
    assert!(!CAFFE_ONNX.may_reshape("conv1.conv.weight"));
}

#[test]
fn the_paper_results_are_table_3() {
    let rows: Vec<_> = weights::PAPER_RESULTS
        .iter()
        .map(|r| (r.arch, r.accuracy.top1, r.accuracy.top5))
        .collect();
    assert_eq!(
        rows,
        [
            ("googlenet_paper", None, Some(89.93)),
            ("googlenet_paper", None, Some(90.85)),
            ("googlenet_paper", None, Some(92.11)),
        ]
    );
}

#[test]
fn an_auxiliary_head_on_a_stage_the_network_lacks_is_refused() {
    let mut net: Network = GoogLeNetConfig::googlenet().into();
    net.aux[0].after = "inception9z";
    let err = Inception::new(net, VarBuilder::zeros(DType::F32, &Device::Cpu))
        .unwrap_err()
        .to_string();
    assert!(err.contains("inception9z"), "{err}");
}

/// Trains one step's worth: `forward_train` on a batch of two `size × size` images, the main
/// and weighted auxiliary losses (here plain sums of logits) back-propagated; every parameter
/// must receive a gradient.
fn assert_trainable(net: impl Into<Network>, size: usize) -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let varmap = candle_nn::VarMap::new();
    let vb = convnets_core::init::var_builder(&varmap, 0, DType::F32, &dev);
    let model = Inception::new(net, vb)?;
    let x = Tensor::randn(0f32, 1.0, (2, 3, size, size), &dev)?;
    let out = model.forward_train(&x)?;
    let mut loss = out.logits.sum_all()?;
    for aux in &out.aux {
        loss = (loss + (aux.logits.sum_all()? * aux.loss_weight)?)?;
    }
    let grads = loss.backward()?;
    let vars = varmap.data().lock().expect("not poisoned");
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            continue;
        }
        anyhow::ensure!(
            grads.get(vars[name].as_tensor()).is_some(),
            "no gradient reaches `{name}`"
        );
    }
    Ok(())
}

#[test]
fn every_parameter_gets_a_gradient_in_training() -> anyhow::Result<()> {
    // At the smallest sizes that keep the ops of each kind (CPU backward passes are slow):
    // torchvision's GoogLeNet with its auxiliary heads (adaptive pooling to 4×4 needs
    // inception4a at 4×4 or more), the paper's without them (its 5×5/3 head pooling needs a
    // 224 input; the overlapping average pooling it uses has its own gradient test in core),
    // Inception-v3 without its head (which needs 299) at its minimum of 75, and
    // Inception-ResNet-v2 with one block of each kind, whose layers cover the rest of
    // Inception-v4's.
    assert_trainable(GoogLeNetConfig::googlenet(), 64)?;
    assert_trainable(GoogLeNetConfig::paper().with_aux_logits(false), 64)?;
    assert_trainable(InceptionV3Config::inception_v3().with_aux_logits(false), 75)?;
    let irv2 = InceptionResNetV2Config {
        blocks: [1, 1, 1],
        ..InceptionResNetV2Config::inception_resnet_v2()
    };
    assert_trainable(irv2, 75)
}
