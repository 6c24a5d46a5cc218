//! VGG's structure: `features.N` derived from each column of Table 1, with and without
//! BatchNorm; dense evaluation's geometry, and each of its scores against the standard head on
//! its window. Parity with torchvision and timm is in the workspace's tests/parity_vgg.rs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use convnets_core::{Classifier, procedural};
use convnets_vgg::{Vgg, VggConfig};

/// Serves zeros and records every name and shape the model asks for.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<BTreeMap<String, Vec<usize>>>>);

impl SimpleBackend for Recorder {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.0
            .lock()
            .expect("recorder")
            .insert(name.to_string(), shape.dims().to_vec());
        Tensor::zeros(shape, dtype, dev)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: shape needed")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// Serves seeded random values: the procedural tensor of each name (tests/parity/README.md),
/// weights in `±sqrt(3 / fan_in)` so activations stay of order one, biases in `±0.1`.
struct Procedural;

impl SimpleBackend for Procedural {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = shape.dims();
        let b = match dims {
            [_, fan_in @ ..] if !fan_in.is_empty() => {
                (3.0 / fan_in.iter().product::<usize>() as f64).sqrt()
            }
            _ => 0.1,
        };
        procedural::tensor_as(name, dims, -b, b, dtype, dev).map_err(candle_core::Error::wrap)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: shape needed")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

fn build(config: &VggConfig) -> Result<(Vgg, BTreeMap<String, Vec<usize>>)> {
    let recorder = Recorder::default();
    let vb = VarBuilder::from_backend(Box::new(recorder.clone()), DType::F32, Device::Cpu);
    let model = Vgg::new(config, vb)?;
    let names = recorder.0.lock().expect("recorder").clone();
    Ok((model, names))
}

/// The `features` indices holding a convolution weight, in order.
fn conv_indices(names: &BTreeMap<String, Vec<usize>>) -> Vec<usize> {
    let mut v: Vec<usize> = names
        .iter()
        .filter(|(n, shape)| n.starts_with("features.") && shape.len() == 4)
        .filter_map(|(n, _)| n.split('.').nth(1)?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn features_indices_follow_torchvisions_make_layers() -> Result<()> {
    // torchvision's vgg11 / vgg11_bn / vgg19 state dicts.
    let (_, names) = build(&VggConfig::a())?;
    assert_eq!(conv_indices(&names), [0, 3, 6, 8, 11, 13, 16, 18]);
    let (_, names) = build(&VggConfig::a().with_batch_norm())?;
    assert_eq!(conv_indices(&names), [0, 4, 8, 11, 15, 18, 22, 25]);
    assert_eq!(names["features.1.running_var"], [64]);
    assert_eq!(names["features.26.weight"], [512]);
    let (_, names) = build(&VggConfig::e())?;
    assert_eq!(
        conv_indices(&names),
        [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    );
    for fc in ["classifier.0", "classifier.3", "classifier.6"] {
        assert!(names.contains_key(&format!("{fc}.weight")), "{fc}");
    }
    assert_eq!(names["classifier.0.weight"], [4096, 25088]);
    Ok(())
}

#[test]
fn the_papers_other_columns_take_their_indices_too() -> Result<()> {
    // A-LRN: the LRN takes index 2, before the first pooling.
    let (_, names) = build(&VggConfig::a_lrn())?;
    assert_eq!(conv_indices(&names), [0, 4, 7, 9, 12, 14, 17, 19]);
    // C: the third convolution of stages 3-5 is 1×1.
    let (_, names) = build(&VggConfig::c().with_batch_norm())?;
    assert_eq!(names["features.20.weight"], [256, 256, 1, 1]);
    assert_eq!(names["features.30.weight"], [512, 512, 1, 1]);
    assert_eq!(names["features.40.weight"], [512, 512, 1, 1]);
    Ok(())
}

#[test]
fn dense_evaluation_gives_a_score_map_per_position() -> Result<()> {
    let (model, _) = build(&VggConfig::a().with_num_classes(10))?;
    let dev = Device::Cpu;
    // A 288×320 image: a 9×10 feature map, so fc6's 7×7 window fits 3×4 times.
    let features = Tensor::zeros((2, 512, 9, 10), DType::F32, &dev)?;
    assert_eq!(model.score_map(&features)?.dims(), [2, 10, 3, 4]);
    assert_eq!(model.forward_dense_head(&features)?.dims(), [2, 10]);
    // Smaller than 224: fc6's window does not fit, and the error says so.
    let small = Tensor::zeros((1, 512, 6, 6), DType::F32, &dev)?;
    let err = model
        .forward_dense_head(&small)
        .expect_err("6×6 is too small");
    assert!(err.to_string().contains("224"), "{err}");
    // The standard head takes any size through its adaptive pooling.
    assert_eq!(model.forward_head(&small, false)?.dims(), [1, 10]);
    Ok(())
}

#[test]
fn each_dense_score_is_the_head_on_its_window() -> Result<()> {
    // Dense evaluation is fc6 as a 7×7 convolution: the score at (i, j) is the standard head
    // on the 7×7 window whose top-left corner is (i, j). A non-square 9×10 map (a 288×320
    // image) and two images tell rows from columns and images from positions; random weights
    // and features make any other window give other scores. Narrow fc layers keep it quick.
    let config = VggConfig {
        hidden: 64,
        ..VggConfig::a().with_num_classes(10)
    };
    let dev = Device::Cpu;
    let vb = VarBuilder::from_backend(Box::new(Procedural), DType::F32, dev.clone());
    let model = Vgg::new(&config, vb)?;
    // Post-ReLU features are non-negative.
    let features = procedural::tensor("features", &[2, 512, 9, 10], 0.0, 2.0, &dev)?;

    let scores = model.score_map(&features)?;
    assert_eq!(scores.dims(), [2, 10, 3, 4]);
    let max_abs = |t: Tensor| -> Result<f32> { Ok(t.abs()?.max_all()?.to_scalar()?) };
    for i in 0..3 {
        for j in 0..4 {
            let window = features.narrow(2, i, 7)?.narrow(3, j, 7)?;
            let head = model.forward_head(&window, false)?;
            let dense = scores.narrow(2, i, 1)?.narrow(3, j, 1)?.flatten_from(1)?;
            let err = max_abs((dense - &head)?)?;
            assert!(err <= 1e-5, "score map at ({i}, {j}): off by {err:e}");
        }
    }
    // The comparison can see a wrong window: neighbouring windows score far apart.
    let step = max_abs((scores.narrow(3, 1, 1)? - scores.narrow(3, 0, 1)?)?)?;
    assert!(step > 1e-2, "neighbouring windows score alike: {step:e}");

    // The dense head is the score map's spatial mean.
    let mean = (model.forward_dense_head(&features)? - scores.mean((2, 3))?)?;
    assert!(max_abs(mean)? <= 1e-6);
    Ok(())
}
