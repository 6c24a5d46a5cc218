//! Parameter counts: torchvision's for the ImageNet nets, the paper's (Table 6, to its
//! precision) for the CIFAR-10 nets. The model is built over a backend that only records
//! the shape of every tensor it asks for, so even Wide ResNet-101 costs nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use convnets_resnet::weights::WEIGHTS;
use convnets_resnet::{ResNet, ResNetConfig, Shortcut};

/// Hands out zeros (a broadcast scalar, no allocation) and records what was asked for.
#[derive(Clone, Default)]
struct Census(Arc<Mutex<BTreeMap<String, usize>>>);

impl SimpleBackend for Census {
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
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?
            .insert(name.to_string(), shape.elem_count());
        Tensor::zeros((), dtype, dev)?.broadcast_as(shape)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: shape unknown")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        false
    }
}

/// Learnable parameters of the model `config` builds (BatchNorm running statistics are
/// buffers, as in PyTorch's `sum(p.numel() for p in model.parameters())`).
fn num_params(config: &ResNetConfig) -> usize {
    let census = Census::default();
    let vb = VarBuilder::from_backend(Box::new(census.clone()), DType::F32, Device::Cpu);
    ResNet::new(config, vb).expect("the model builds");
    let tensors = census.0.lock().expect("not poisoned");
    tensors
        .iter()
        .filter(|(name, _)| !name.ends_with("running_mean") && !name.ends_with("running_var"))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn imagenet_nets_have_torchvisions_parameter_counts() {
    let nets = [
        ("resnet18", ResNetConfig::resnet18()),
        ("resnet34", ResNetConfig::resnet34()),
        ("resnet50", ResNetConfig::resnet50()),
        ("resnet101", ResNetConfig::resnet101()),
        ("resnet152", ResNetConfig::resnet152()),
        ("wide_resnet50_2", ResNetConfig::wide_resnet50_2()),
        ("wide_resnet101_2", ResNetConfig::wide_resnet101_2()),
        ("resnext50_32x4d", ResNetConfig::resnext50_32x4d()),
        ("resnext101_32x8d", ResNetConfig::resnext101_32x8d()),
    ];
    for (arch, config) in nets {
        let n = num_params(&config);
        // The weights table carries torchvision's `num_params` metadata for every arch.
        let spec = WEIGHTS
            .iter()
            .find(|w| w.arch == arch)
            .unwrap_or_else(|| panic!("{arch}: no weights row"));
        assert_eq!(n, spec.num_params, "{arch}");
    }
    assert_eq!(num_params(&ResNetConfig::resnet50()), 25_557_032);
}

#[test]
fn cifar_nets_have_the_papers_parameter_counts() {
    // He et al. 2015, Table 6, with the number of decimals the paper prints (in millions).
    let table6 = [
        (ResNetConfig::resnet20(), 0.27, 2),
        (ResNetConfig::resnet32(), 0.46, 2),
        (ResNetConfig::resnet44(), 0.66, 2),
        (ResNetConfig::resnet56(), 0.85, 2),
        (ResNetConfig::resnet110(), 1.7, 1),
        (ResNetConfig::resnet1202(), 19.4, 1),
    ];
    for (config, millions, decimals) in table6 {
        let n = num_params(&config);
        let scale = 10f64.powi(decimals);
        let rounded = (n as f64 / 1e6 * scale).round() / scale;
        assert_eq!(
            rounded,
            millions,
            "ResNet-{}: {n} parameters",
            config.depth()
        );
        // Option A adds nothing: the plain net has exactly the same parameters.
        assert_eq!(num_params(&config.without_shortcuts()), n);
    }
    assert_eq!(num_params(&ResNetConfig::resnet20()), 269_722);
}

#[test]
fn projection_shortcuts_add_exactly_their_convolutions() {
    // ResNet-20 with option B: two 1×1 projections (16→32, 32→64) and their BatchNorms.
    let a = num_params(&ResNetConfig::resnet20());
    let b = num_params(&ResNetConfig::resnet20().with_shortcut(Shortcut::Projection));
    assert_eq!(b - a, (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64));
}

#[test]
fn the_head_follows_the_number_of_classes() {
    let base = num_params(&ResNetConfig::resnet18());
    let ten = num_params(&ResNetConfig::resnet18().with_num_classes(10));
    assert_eq!(base - ten, 512 * 990 + 990);
    let grey = num_params(&ResNetConfig::resnet18().with_in_channels(1));
    assert_eq!(base - grey, 64 * 2 * 7 * 7);
}
