//! Evaluation on the CPU: a batch of ImageNet-sized images gives each image the logits it
//! gets on its own, whether the backbone runs image by image or, for the last stages, on
//! groups of images (`Classifier::forward_features_group`).

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::{ModuleT, VarMap};
use convnets_core::Classifier;
use convnets_core::init::var_builder;
use convnets_resnet::{ResNet, ResNetConfig, Stem};

/// ResNet-50's layout at a quarter of its width and fewer blocks: the last two stages have
/// 14×14 and 7×7 maps and 32-channel 3×3 convolutions, which run as Winograd products over
/// a group's images.
const NARROW_RESNET: ResNetConfig = ResNetConfig {
    depths: &[1, 1, 2, 2],
    widths: &[16, 32, 32, 32],
    stem: Stem {
        width: 16,
        ..Stem::IMAGENET
    },
    num_classes: 10,
    ..ResNetConfig::resnet50()
};

#[test]
fn a_batch_gives_every_image_its_own_logits() -> Result<()> {
    let dev = Device::Cpu;
    // Plain tensors, not variables: the inference kernels run only for those.
    let varmap = VarMap::new();
    ResNet::new(&NARROW_RESNET, var_builder(&varmap, 5, DType::F32, &dev))?;
    let mut model = ResNet::new(
        &NARROW_RESNET,
        convnets_core::init::frozen(&varmap, DType::F32, &dev)?,
    )?;
    model.fold_batch_norm()?;
    assert!(model.eval_group() > 1, "ResNet evaluates in groups");

    let n = 7;
    let xs = convnets_core::procedural::tensor("images", &[n, 3, 224, 224], -2.0, 2.0, &dev)?;
    let batch = model.forward_t(&xs, false)?;
    let group = model.forward_head(&model.forward_features_group(&xs)?, false)?;
    for (i, logits) in [batch, group].iter().enumerate() {
        for k in 0..n {
            let x = xs.narrow(0, k, 1)?;
            let alone = model.forward_head(&model.forward_features(&x, false)?, false)?;
            let got = logits.narrow(0, k, 1)?;
            let scale = alone.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
            let err = (got - &alone)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                err <= 1e-5 * scale,
                "run {i}, image {k}: {err} (logits up to {scale})"
            );
        }
    }
    Ok(())
}
