//! The AlexNet family's structure: module names derived from each configuration, shapes,
//! input-size checks and training-mode dropout. Parity with the reference implementations
//! is in the workspace's tests/parity_alexnet.rs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_alexnet::{AlexNet, AlexNetConfig};
use convnets_core::Classifier;

/// Serves constant tensors and records every name and shape the model asks for.
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
        Tensor::full(0.01f32, shape, dev)?.to_dtype(dtype)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: shape needed")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

fn build(config: &AlexNetConfig) -> Result<(AlexNet, BTreeMap<String, Vec<usize>>)> {
    let recorder = Recorder::default();
    let vb = VarBuilder::from_backend(Box::new(recorder.clone()), DType::F32, Device::Cpu);
    let model = AlexNet::new(config, vb)?;
    let names = recorder.0.lock().expect("recorder").clone();
    Ok((model, names))
}

fn modules(names: &BTreeMap<String, Vec<usize>>) -> Vec<String> {
    let mut m: Vec<String> = names
        .keys()
        .filter_map(|n| n.strip_suffix(".weight").map(str::to_string))
        .collect();
    m.sort_by_key(|n| {
        let (part, index) = n.split_once('.').unwrap_or_default();
        (
            part != "features",
            index.parse::<usize>().unwrap_or_default(),
        )
    });
    m
}

#[test]
fn torchvision_layout_has_torchvision_indices() -> Result<()> {
    let (_, names) = build(&AlexNetConfig::alexnet())?;
    assert_eq!(
        modules(&names),
        [
            "features.0",
            "features.3",
            "features.6",
            "features.8",
            "features.10",
            "classifier.1",
            "classifier.4",
            "classifier.6"
        ]
    );
    assert_eq!(names["classifier.1.weight"], [4096, 9216]);
    Ok(())
}

#[test]
fn paper_layouts_count_the_lrn_and_put_dropout_after() -> Result<()> {
    for config in [
        AlexNetConfig::alexnet_paper(),
        AlexNetConfig::bvlc_alexnet(),
        AlexNetConfig::zfnet(),
        AlexNetConfig::zfnet512(),
    ] {
        let (_, names) = build(&config)?;
        assert_eq!(
            modules(&names),
            [
                "features.0",
                "features.4",
                "features.8",
                "features.10",
                "features.12",
                "classifier.0",
                "classifier.3",
                "classifier.6"
            ]
        );
    }
    let (_, names) = build(&AlexNetConfig::alexnet_paper())?;
    // The two GPUs' halves: conv2, conv4, conv5 see half of their input channels.
    assert_eq!(names["features.4.weight"], [256, 48, 5, 5]);
    assert_eq!(names["features.8.weight"], [384, 256, 3, 3]);
    assert_eq!(names["features.10.weight"], [384, 192, 3, 3]);
    assert_eq!(names["features.12.weight"], [256, 192, 3, 3]);
    Ok(())
}

#[test]
fn every_configuration_classifies_a_batch_at_its_input_size() -> Result<()> {
    for config in [
        AlexNetConfig::alexnet(),
        AlexNetConfig::alexnet_paper(),
        AlexNetConfig::zfnet(),
        AlexNetConfig::zfnet512(),
    ] {
        let (model, _) = build(&config.with_num_classes(7))?;
        let s = config.input_size;
        let x = Tensor::zeros((1, 3, s, s), DType::F32, &Device::Cpu)?;
        assert_eq!(model.forward_t(&x, false)?.dims(), [1, 7]);
        assert_eq!(model.num_classes(), 7);
    }
    Ok(())
}

#[test]
fn a_paper_network_refuses_an_input_its_fc6_cannot_read() -> Result<()> {
    let (model, _) = build(&AlexNetConfig::alexnet_paper())?;
    let x = Tensor::zeros((1, 3, 300, 300), DType::F32, &Device::Cpu)?;
    let err = model
        .forward_t(&x, false)
        .expect_err("300×300 gives 8×8 maps");
    assert!(err.to_string().contains("227×227"), "{err}");
    // torchvision's adaptive pooling takes any size.
    let (model, _) = build(&AlexNetConfig::alexnet())?;
    assert_eq!(model.forward_t(&x, false)?.dims(), [1, 1000]);
    Ok(())
}

#[test]
fn dropout_acts_in_training_only() -> Result<()> {
    let (model, _) = build(&AlexNetConfig::alexnet_paper())?;
    let features = Tensor::rand(0f32, 1., (1, 256, 6, 6), &Device::Cpu)?;
    let eval = model.forward_head(&features, false)?;
    let again = model.forward_head(&features, false)?;
    let train = model.forward_head(&features, true)?;
    let diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
        Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
    };
    assert_eq!(diff(&eval, &again)?, 0.0);
    assert!(diff(&eval, &train)? > 0.0);
    Ok(())
}
