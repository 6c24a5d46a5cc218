//! Table 1 of Simonyan & Zisserman 2015 as data.

/// One entry of a VGG column: what follows the previous one in `features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggLayer {
    /// `conv3-N`: a 3×3 convolution, stride 1, padding 1, `N` channels, then ReLU (after a
    /// BatchNorm in the `_bn` variants).
    Conv3(usize),
    /// `conv1-N`: a 1×1 convolution (configuration C), then ReLU.
    Conv1(usize),
    /// `LRN`: local response normalisation (configuration A-LRN).
    Lrn,
    /// `maxpool`: 2×2, stride 2.
    MaxPool,
}

use VggLayer::{Conv1, Conv3, Lrn, MaxPool};

/// Column A, 11 weight layers.
pub const A: &[VggLayer] = &[
    Conv3(64),
    MaxPool,
    Conv3(128),
    MaxPool,
    Conv3(256),
    Conv3(256),
    MaxPool,
    Conv3(512),
    Conv3(512),
    MaxPool,
    Conv3(512),
    Conv3(512),
    MaxPool,
];

/// Column A-LRN: A with local response normalisation after the first layer.
pub const A_LRN: &[VggLayer] = &[
    Conv3(64),
    Lrn,
    MaxPool,
    Conv3(128),
    MaxPool,
    Conv3(256),
    Conv3(256),
    MaxPool,
    Conv3(512),
    Conv3(512),
    MaxPool,
    Conv3(512),
    Conv3(512),
    MaxPool,
];

/// Column B, 13 weight layers.
pub const B: &[VggLayer] = &[
    Conv3(64),
    Conv3(64),
    MaxPool,
    Conv3(128),
    Conv3(128),
    MaxPool,
    Conv3(256),
    Conv3(256),
    MaxPool,
    Conv3(512),
    Conv3(512),
    MaxPool,
    Conv3(512),
    Conv3(512),
    MaxPool,
];

/// Column C, 16 weight layers, the third of each of the last three stages a 1×1 convolution.
pub const C: &[VggLayer] = &[
    Conv3(64),
    Conv3(64),
    MaxPool,
    Conv3(128),
    Conv3(128),
    MaxPool,
    Conv3(256),
    Conv3(256),
    Conv1(256),
    MaxPool,
    Conv3(512),
    Conv3(512),
    Conv1(512),
    MaxPool,
    Conv3(512),
    Conv3(512),
    Conv1(512),
    MaxPool,
];

/// Column D, 16 weight layers ("VGG-16").
pub const D: &[VggLayer] = &[
    Conv3(64),
    Conv3(64),
    MaxPool,
    Conv3(128),
    Conv3(128),
    MaxPool,
    Conv3(256),
    Conv3(256),
    Conv3(256),
    MaxPool,
    Conv3(512),
    Conv3(512),
    Conv3(512),
    MaxPool,
    Conv3(512),
    Conv3(512),
    Conv3(512),
    MaxPool,
];

/// Column E, 19 weight layers ("VGG-19").
pub const E: &[VggLayer] = &[
    Conv3(64),
    Conv3(64),
    MaxPool,
    Conv3(128),
    Conv3(128),
    MaxPool,
    Conv3(256),
    Conv3(256),
    Conv3(256),
    Conv3(256),
    MaxPool,
    Conv3(512),
    Conv3(512),
    Conv3(512),
    Conv3(512),
    MaxPool,
    Conv3(512),
    Conv3(512),
    Conv3(512),
    Conv3(512),
    MaxPool,
];

/// The normalisation of configuration A-LRN: "the parameters for the LRN layer are those of
/// (Krizhevsky et al., 2012)", `n = 5, α = 10⁻⁴, β = 0.75, k = 2`, written here in PyTorch's
/// and Caffe's convention, which divides `alpha` by the window size (hence `5e-4`; the
/// VGG group's own Caffe models of that time write `alpha: 0.0005 k: 2`).
pub const LRN: (usize, f64, f64, f64) = (5, 5e-4, 0.75, 2.0);

/// Side of the feature map fc6 reads: 224 / 2⁵.
pub const FC6_SIDE: usize = 7;

/// A VGG network: a column of Table 1 and the choices around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VggConfig {
    /// Architecture name of the column without BatchNorm (`vgg16`, `vgg11_lrn`, ...).
    pub name: &'static str,
    /// The column.
    pub layers: &'static [VggLayer],
    /// A BatchNorm between each convolution and its ReLU (torchvision's `_bn` models; the
    /// convolutions keep their biases).
    pub batch_norm: bool,
    /// Input channels.
    pub in_channels: usize,
    /// Units of fc6 and fc7.
    pub hidden: usize,
    /// Dropout after fc6 and fc7 ("dropout ratio set to 0.5", §3.1).
    pub dropout: f64,
    /// Number of classes.
    pub num_classes: usize,
}

impl VggConfig {
    const fn column(name: &'static str, layers: &'static [VggLayer]) -> Self {
        Self {
            name,
            layers,
            batch_norm: false,
            in_channels: 3,
            hidden: 4096,
            dropout: 0.5,
            num_classes: 1000,
        }
    }

    /// Configuration A (torchvision's `vgg11`).
    pub const fn a() -> Self {
        Self::column("vgg11", A)
    }

    /// Configuration A-LRN.
    pub const fn a_lrn() -> Self {
        Self::column("vgg11_lrn", A_LRN)
    }

    /// Configuration B (torchvision's `vgg13`).
    pub const fn b() -> Self {
        Self::column("vgg13", B)
    }

    /// Configuration C (16 layers with 1×1 convolutions; not in torchvision).
    pub const fn c() -> Self {
        Self::column("vgg16c", C)
    }

    /// Configuration D (torchvision's `vgg16`).
    pub const fn d() -> Self {
        Self::column("vgg16", D)
    }

    /// Configuration E (torchvision's `vgg19`).
    pub const fn e() -> Self {
        Self::column("vgg19", E)
    }

    /// The same with BatchNorm after every convolution.
    pub const fn with_batch_norm(mut self) -> Self {
        self.batch_norm = true;
        self
    }

    /// The same with another number of classes.
    pub const fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Every configuration, without and with BatchNorm.
    pub fn all() -> [Self; 12] {
        let plain = [
            Self::a(),
            Self::a_lrn(),
            Self::b(),
            Self::c(),
            Self::d(),
            Self::e(),
        ];
        std::array::from_fn(|i| {
            let c = plain[i / 2];
            if i % 2 == 1 { c.with_batch_norm() } else { c }
        })
    }

    /// The architecture name: `name`, with `_bn` when it has BatchNorm.
    pub fn arch(&self) -> String {
        if self.batch_norm {
            format!("{}_bn", self.name)
        } else {
            self.name.to_string()
        }
    }

    /// The configuration of an architecture name (`vgg16_bn`, `vgg11_lrn`, ...).
    pub fn for_arch(arch: &str) -> Option<Self> {
        Self::all().into_iter().find(|c| c.arch() == arch)
    }

    /// Channels of the last convolution.
    pub fn out_channels(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| match *l {
                Conv3(c) | Conv1(c) => Some(c),
                Lrn | MaxPool => None,
            })
            .unwrap_or(self.in_channels)
    }

    /// Number of weight layers (the paper's "11 weight layers" of A, ...).
    pub fn depth(&self) -> usize {
        3 + self
            .layers
            .iter()
            .filter(|l| matches!(l, Conv3(_) | Conv1(_)))
            .count()
    }

    /// Number of parameters (BatchNorm's running statistics not counted).
    pub fn num_params(&self) -> usize {
        let mut n = 0;
        let mut in_c = self.in_channels;
        for layer in self.layers {
            let (c, k) = match *layer {
                Conv3(c) => (c, 3),
                Conv1(c) => (c, 1),
                Lrn | MaxPool => continue,
            };
            n += c * in_c * k * k + c;
            if self.batch_norm {
                n += 2 * c;
            }
            in_c = c;
        }
        let mut fan_in = in_c * FC6_SIDE * FC6_SIDE;
        for units in [self.hidden, self.hidden, self.num_classes] {
            n += units * fan_in + units;
            fan_in = units;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_are_the_columns_of_table_1() {
        let depths: Vec<usize> = [
            VggConfig::a(),
            VggConfig::a_lrn(),
            VggConfig::b(),
            VggConfig::c(),
            VggConfig::d(),
            VggConfig::e(),
        ]
        .iter()
        .map(VggConfig::depth)
        .collect();
        assert_eq!(depths, [11, 11, 13, 16, 16, 19]);
        for c in VggConfig::all() {
            assert_eq!(c.layers.iter().filter(|&&l| l == MaxPool).count(), 5);
            assert_eq!(c.out_channels(), 512);
        }
    }

    #[test]
    fn a_lrn_normalises_with_alexnets_constants() {
        // Krizhevsky et al.'s n 5, α 1e-4 on the plain sum, β 0.75, k 2 as (size, alpha on
        // the mean, beta, k). Pinned because parity, on unit activations, barely sees alpha
        // (convnets-alexnet's `the_lrn_constants_are_the_papers_and_caffes`).
        assert_eq!(LRN, (5, 5e-4, 0.75, 2.0));
        assert_eq!(VggConfig::a_lrn().layers[..3], [Conv3(64), Lrn, MaxPool]);
    }

    #[test]
    fn parameter_counts() {
        // torchvision's meta for A, B, D, E with and without BatchNorm; Table 2 of the paper
        // gives 133, 133, 134, 138, 144 millions for A/A-LRN, B, C, D, E.
        let count = |c: VggConfig| c.num_params();
        assert_eq!(count(VggConfig::a()), 132_863_336);
        assert_eq!(count(VggConfig::a().with_batch_norm()), 132_868_840);
        assert_eq!(count(VggConfig::b()), 133_047_848);
        assert_eq!(count(VggConfig::b().with_batch_norm()), 133_053_736);
        assert_eq!(count(VggConfig::d()), 138_357_544);
        assert_eq!(count(VggConfig::d().with_batch_norm()), 138_365_992);
        assert_eq!(count(VggConfig::e()), 143_667_240);
        assert_eq!(count(VggConfig::e().with_batch_norm()), 143_678_248);
        assert_eq!(count(VggConfig::a_lrn()), count(VggConfig::a()));
        assert_eq!(count(VggConfig::c()), 133_638_952);
        assert_eq!(count(VggConfig::c().with_batch_norm()), 133_647_400);
        let millions = |c: VggConfig| (c.num_params() as f64 / 1e6).round() as usize;
        let table_2: Vec<usize> = [VggConfig::a(), VggConfig::b(), VggConfig::c()]
            .into_iter()
            .chain([VggConfig::d(), VggConfig::e()])
            .map(millions)
            .collect();
        assert_eq!(table_2, [133, 133, 134, 138, 144]);
    }

    #[test]
    fn arch_names_round_trip() {
        for c in VggConfig::all() {
            assert_eq!(VggConfig::for_arch(&c.arch()), Some(c));
        }
        assert_eq!(
            VggConfig::for_arch("vgg16_bn"),
            Some(VggConfig::d().with_batch_norm())
        );
        assert_eq!(VggConfig::for_arch("vgg17"), None);
    }
}
