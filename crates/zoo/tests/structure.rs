//! Parameters and multiply-accumulates counted from the models' structure, against the
//! numbers torchvision publishes and the weight tables record.

use std::collections::HashMap;

use anyhow::Result;
use convnets::{ARCHITECTURES, Structure, weights};

/// torchvision 0.29's weight metadata, `meta["_ops"]` ("GFLOPS") and `meta["num_params"]`,
/// for one image at the weights' crop (224, 299 for Inception-v3).
const TORCHVISION: &[(&str, f64, usize)] = &[
    ("alexnet", 0.714, 61_100_840),
    ("vgg11", 7.609, 132_863_336),
    ("vgg11_bn", 7.609, 132_868_840),
    ("vgg13", 11.308, 133_047_848),
    ("vgg13_bn", 11.308, 133_053_736),
    ("vgg16", 15.47, 138_357_544),
    ("vgg16_bn", 15.47, 138_365_992),
    ("vgg19", 19.632, 143_667_240),
    ("vgg19_bn", 19.632, 143_678_248),
    ("resnet18", 1.814, 11_689_512),
    ("resnet34", 3.664, 21_797_672),
    ("resnet50", 4.089, 25_557_032),
    ("resnet101", 7.801, 44_549_160),
    ("resnet152", 11.514, 60_192_808),
    ("wide_resnet50_2", 11.398, 68_883_240),
    ("wide_resnet101_2", 22.753, 126_886_696),
    ("resnext50_32x4d", 4.23, 25_028_904),
    ("resnext101_32x8d", 16.414, 88_791_336),
    // Without the auxiliary heads, as torchvision returns the pretrained model.
    ("googlenet", 1.498, 6_624_904),
    // With its auxiliary head, which does not run in evaluation.
    ("inception_v3", 5.713, 27_161_264),
];

/// Multiply-accumulates of one image as PyTorch counts them (`torch.utils.flop_counter.
/// FlopCounterMode`, convolutions and matrix products, total / 2) for the reference models in
/// evaluation mode: torch 2.15, torchvision 0.29.2 (googlenet and inception_v3 without
/// auxiliary heads), timm 1.0.31 (inception_v4, inception_resnet_v2); 224×224, 299×299 for
/// the Inceptions but GoogLeNet.
const PYTORCH_FLOP_COUNTER: &[(&str, u64)] = &[
    ("alexnet", 714_188_480),
    ("vgg11", 7_609_090_048),
    ("vgg11_bn", 7_609_090_048),
    ("vgg13", 11_308_466_176),
    ("vgg13_bn", 11_308_466_176),
    ("vgg16", 15_470_264_320),
    ("vgg16_bn", 15_470_264_320),
    ("vgg19", 19_632_062_464),
    ("vgg19_bn", 19_632_062_464),
    ("resnet18", 1_814_073_344),
    ("resnet34", 3_663_761_408),
    ("resnet50", 4_089_184_256),
    ("resnet101", 7_801_405_440),
    ("resnet152", 11_513_626_624),
    ("wide_resnet50_2", 11_398_021_120),
    ("wide_resnet101_2", 22_753_050_624),
    ("resnext50_32x4d", 4_230_479_872),
    ("resnext101_32x8d", 16_414_015_488),
    ("googlenet", 1_498_376_192),
    ("inception_v3", 5_713_216_096),
    ("inception_v4", 12_253_974_624),
    ("inception_resnet_v2", 13_155_794_016),
];

/// One test, so that every architecture is counted once: this is what `convnets models`
/// prints.
#[test]
fn counts_are_torchvisions_and_the_tables() -> Result<()> {
    let start = std::time::Instant::now();
    let mut counted = HashMap::new();
    for arch in ARCHITECTURES {
        let s = Structure::of_architecture(arch)?;
        assert!(s.params > 0 && s.macs.total() > 0, "{}", arch.name);
        eprintln!(
            "{:>20}: {:>11} params, {:>8.4} GMACs at {:?}",
            arch.name,
            s.params,
            s.gflops(),
            s.input
        );
        counted.insert(arch.name, s);
    }
    eprintln!(
        "{} architectures in {:?}",
        ARCHITECTURES.len(),
        start.elapsed()
    );

    for &(name, gflops, params) in TORCHVISION {
        let s = &counted[name];
        // torchvision rounds to three decimals.
        assert!(
            (s.gflops() - gflops).abs() <= 5e-4 + 1e-12,
            "{name}: {} GMACs, torchvision {gflops}",
            s.gflops()
        );
        if name == "googlenet" {
            // The preset has torchvision's (untrained) auxiliary heads.
            assert_eq!(s.params, 13_004_888);
        } else {
            assert_eq!(s.params, params, "{name}");
        }
    }

    for &(name, macs) in PYTORCH_FLOP_COUNTER {
        assert_eq!(counted[name].macs.total(), macs, "{name}");
    }

    let start = std::time::Instant::now();
    for spec in weights() {
        let s = Structure::of_weights(spec)?;
        if spec.id == "inception_v3.tv_in1k" {
            // torchvision's count includes the auxiliary head the file carries; the
            // inference network has none.
            assert_eq!(s.params + 3_326_696, spec.num_params);
        } else {
            assert_eq!(s.params, spec.num_params, "{}", spec.id);
        }
        let preset = &counted[spec.arch];
        if s.input == preset.input {
            assert_eq!(s.macs, preset.macs, "{}", spec.id);
        }
    }
    eprintln!("{} weights in {:?}", weights().count(), start.elapsed());
    Ok(())
}
