//! torchvision's `transform_input`, and the rule that applies the normalisation exactly once.
//!
//! Every pretrained network of this family is a port of one of Google's TensorFlow models,
//! trained on pixels scaled to [-1, 1], that is normalised with mean = std = 0.5. timm's
//! configs for Inception-v4 and Inception-ResNet-v2 say so and normalise that way.
//! torchvision instead evaluates its GoogLeNet and Inception-v3 ports with its usual ImageNet
//! normalisation and builds them with `transform_input=True`, a per-channel affine map at
//! the top of the network that turns the ImageNet-normalised input into the [-1, 1] one:
//! `x·(std/0.5) + (mean − 0.5)/0.5`.
//!
//! Mixing the two conventions normalises twice, or not at all; nothing fails, the accuracy
//! quietly drops. So the map is not a flag here but a function of the eval transform the
//! images actually went through: [`TransformInput::for_eval_transform`] returns torchvision's
//! map after an ImageNet normalisation and no map after a 0.5 one, and the network sees
//! (p − 0.5)/0.5 either way.

use candle_core::{Result, Tensor};
use convnets_core::spec::{ChannelOrder, EvalTransform, INCEPTION_MEAN, INCEPTION_STD, PixelRange};

/// A per-channel affine map at the network's input, `x[c]·scale[c] + shift[c]`, that turns
/// images normalised one way into images normalised another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformInput {
    /// Per-channel factor, in RGB order.
    pub scale: [f64; 3],
    /// Per-channel offset, added after the factor.
    pub shift: [f64; 3],
}

impl TransformInput {
    /// torchvision's `transform_input=True`: from ImageNet normalisation to [-1, 1], with the
    /// constants computed as torchvision computes them (in f64, from the decimal literals).
    pub const TORCHVISION: Self = Self {
        scale: [0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5],
        shift: [
            (0.485 - 0.5) / 0.5,
            (0.456 - 0.5) / 0.5,
            (0.406 - 0.5) / 0.5,
        ],
    };

    /// The map from inputs normalised with `(mean, std)` = `from` to inputs normalised with
    /// `to`, both over RGB pixels in [0, 1]: `x·(s_from/s_to) + (m_from − m_to)/s_to`.
    /// `None` when the two are the same, since then nothing is to be done.
    pub fn between(from: ([f32; 3], [f32; 3]), to: ([f32; 3], [f32; 3])) -> Option<Self> {
        if from == to {
            return None;
        }
        let mut map = Self {
            scale: [0.0; 3],
            shift: [0.0; 3],
        };
        for c in 0..3 {
            let (m0, s0) = (decimal(from.0[c]), decimal(from.1[c]));
            let (m1, s1) = (decimal(to.0[c]), decimal(to.1[c]));
            map.scale[c] = s0 / s1;
            map.shift[c] = (m0 - m1) / s1;
        }
        Some(map)
    }

    /// The map that turns the output of `transform` into what this family's pretrained
    /// networks were trained on, pixels in [-1, 1]; `None` when `transform` already produces
    /// that (timm's configs). Fails for a transform whose output no per-channel affine map can
    /// bring there: Caffe-style BGR channels.
    pub fn for_eval_transform(transform: &EvalTransform) -> Result<Option<Self>> {
        if transform.channels != ChannelOrder::Rgb {
            candle_core::bail!(
                "transform_input: the eval transform gives {:?} channels; the networks of this \
                 family take RGB",
                transform.channels
            )
        }
        // Pixels on [0, 255] normalised with (m, s) are pixels on [0, 1] normalised with
        // (m/255, s/255).
        let range = match transform.pixel_range {
            PixelRange::Unit => 1.0,
            PixelRange::Byte => 255.0,
        };
        let unit = |v: [f32; 3]| v.map(|x| x / range);
        Ok(Self::between(
            (unit(transform.mean), unit(transform.std)),
            (INCEPTION_MEAN, INCEPTION_STD),
        ))
    }

    /// Applies the map to an `[N, 3, H, W]` batch.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let per_channel = |v: [f64; 3]| {
            // Rounded to the input's dtype before use, as PyTorch rounds a Python scalar.
            Tensor::new(&v, x.device())?
                .reshape((1, 3, 1, 1))?
                .to_dtype(x.dtype())
        };
        x.broadcast_mul(&per_channel(self.scale)?)?
            .broadcast_add(&per_channel(self.shift)?)
    }
}

/// The decimal an f32 constant was written as (its shortest round-trip representation), in
/// f64: the spec's `0.229f32` becomes the `0.229` torchvision computes with.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use convnets_core::spec::{IMAGENET_MEAN, IMAGENET_STD, Interpolation};

    #[test]
    fn imagenet_to_inception_is_torchvisions_map_to_the_bit() {
        let map = TransformInput::between(
            (IMAGENET_MEAN, IMAGENET_STD),
            (INCEPTION_MEAN, INCEPTION_STD),
        );
        assert_eq!(map, Some(TransformInput::TORCHVISION));
        let tv = EvalTransform::torchvision(256, 224);
        assert_eq!(
            TransformInput::for_eval_transform(&tv).unwrap(),
            Some(TransformInput::TORCHVISION)
        );
    }

    #[test]
    fn an_inception_normalised_input_is_left_alone() {
        let timm = EvalTransform::timm(299, 0.875, Interpolation::Bicubic)
            .normalize(INCEPTION_MEAN, INCEPTION_STD);
        assert_eq!(TransformInput::for_eval_transform(&timm).unwrap(), None);
    }

    #[test]
    fn bgr_input_is_refused() {
        let mut caffe = EvalTransform::torchvision(256, 224);
        caffe.channels = ChannelOrder::Bgr;
        assert!(TransformInput::for_eval_transform(&caffe).is_err());
    }

    #[test]
    fn byte_range_normalisation_is_mapped_to_minus_one_one() {
        let mut t = EvalTransform::torchvision(256, 224);
        t.pixel_range = PixelRange::Byte;
        t.mean = [123.675, 116.28, 103.53];
        t.std = [58.395, 57.12, 57.375];
        let map = TransformInput::for_eval_transform(&t).unwrap().unwrap();
        for c in 0..3 {
            for p in [0.0f64, 0.3, 1.0] {
                let x = (255.0 * p - f64::from(t.mean[c])) / f64::from(t.std[c]);
                let y = x * map.scale[c] + map.shift[c];
                assert!((y - (p - 0.5) / 0.5).abs() < 1e-6, "{c} {p}: {y}");
            }
        }
    }
}
