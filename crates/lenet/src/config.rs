//! LeNet-5's configuration: the paper's choices and their modern replacements, as data.

/// The input side the network is designed for: 32×32, MNIST's 28×28 padded by 2 (§II.B:
/// "significantly larger than the largest character in the database").
pub const INPUT_SIZE: usize = 32;

/// Channels of C1, C3, C5 and units of F6 (LeNet-5's widths, fixed by the paper).
pub const C1_MAPS: usize = 6;
/// Feature maps of C3.
pub const C3_MAPS: usize = 16;
/// Feature maps of C5.
pub const C5_MAPS: usize = 120;
/// Units of F6: one per pixel of the 7×12 output prototypes.
pub const F6_UNITS: usize = 84;
/// Kernel size of C1, C3 and C5.
pub const KERNEL: usize = 5;

/// Table I of LeCun et al. 1998: row `i` is S2 feature map `i`, column `j` is C3 feature map
/// `j`, and `X` marks that map `j` combines map `i`. Written as the paper prints it.
///
/// §II.B: "The first six C3 feature maps take inputs from every contiguous subsets of three
/// feature maps in S2. The next six take input from every contiguous subset of four. The
/// next three take input from some discontinuous subsets of four. Finally the last one takes
/// input from all S2 feature maps." That is 60 connections, hence 60 · 25 + 16 = 1,516
/// trainable parameters.
pub const C3_TABLE: [&str; C1_MAPS] = [
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
];

/// The S2 maps C3 map `j` combines, in increasing order, read from [`C3_TABLE`].
pub fn c3_inputs(j: usize) -> Vec<usize> {
    C3_TABLE
        .iter()
        .enumerate()
        .filter(|(_, row)| row.as_bytes().get(j) == Some(&b'X'))
        .map(|(i, _)| i)
        .collect()
}

/// The nonlinearity of every layer up to F6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonlinearity {
    /// The paper's squashing function `f(a) = A·tanh(S·a)` with `A = 1.7159`, `S = 2/3`
    /// (Appendix A), chosen so that `f(±1) = ±1` and the second derivative peaks there.
    ScaledTanh,
    /// `max(a, 0)`.
    Relu,
}

/// How S2 and S4 halve the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsampling {
    /// The paper's: each unit adds its 2×2 inputs, multiplies the sum by a trainable
    /// coefficient and adds a trainable bias (one of each per feature map), then applies the
    /// nonlinearity.
    Trainable,
    /// 2×2 max pooling, stride 2, no parameters.
    MaxPool,
}

/// Which S2 maps each C3 map sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C3Connections {
    /// The paper's Table I ([`C3_TABLE`]): 60 of the 96 possible connections, to break
    /// symmetry and save parameters.
    Table,
    /// Every C3 map sees every S2 map: an ordinary 6 → 16 convolution.
    Full,
}

/// The output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The paper's Euclidean RBF units with fixed ±1 prototypes
    /// ([`crate::prototypes::PROTOTYPES`]): unit `i` outputs `y_i = Σ_j (x_j − w_ij)²`.
    /// Only defined for the ten digits.
    Rbf,
    /// A trainable fully connected layer, F6 → classes.
    Linear,
}

/// How freshly built layers are initialised (a checkpoint overrides this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitScheme {
    /// Appendix A: every weight and bias of a unit uniform in `±2.4 / F`, `F` the unit's
    /// fan-in (the number of its inputs).
    LeCun1998,
    /// PyTorch's defaults for `nn.Conv2d` and `nn.Linear`.
    Torch,
}

/// A LeNet-5 configuration: the layer widths are the paper's; these fields choose each
/// layer's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeNetConfig {
    /// Input channels (1 for MNIST).
    pub in_channels: usize,
    /// Number of classes; the RBF output knows the ten digits only.
    pub num_classes: usize,
    /// Nonlinearity of C1 to F6.
    pub nonlinearity: Nonlinearity,
    /// S2 and S4.
    pub subsampling: Subsampling,
    /// C3's connections.
    pub c3: C3Connections,
    /// The output layer.
    pub output: Output,
    /// Initialisation of a model trained from scratch.
    pub init: InitScheme,
}

impl LeNetConfig {
    /// LeNet-5 exactly as LeCun et al. 1998 describe it: scaled tanh, trainable subsampling,
    /// Table I connections, RBF output, the paper's initialisation. 60,000 trainable
    /// parameters.
    pub const fn classic() -> Self {
        Self {
            in_channels: 1,
            num_classes: 10,
            nonlinearity: Nonlinearity::ScaledTanh,
            subsampling: Subsampling::Trainable,
            c3: C3Connections::Table,
            output: Output::Rbf,
            init: InitScheme::LeCun1998,
        }
    }

    /// LeNet-5 as it is usually built today: ReLU, max pooling, a full C3, a linear head,
    /// PyTorch's initialisation. 61,706 parameters.
    pub const fn modern() -> Self {
        Self {
            in_channels: 1,
            num_classes: 10,
            nonlinearity: Nonlinearity::Relu,
            subsampling: Subsampling::MaxPool,
            c3: C3Connections::Full,
            output: Output::Linear,
            init: InitScheme::Torch,
        }
    }

    /// The same with another number of classes.
    pub const fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// The same with another number of input channels.
    pub const fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_one_is_the_scheme_the_text_describes() {
        // Columns 0-5: the cyclically contiguous triples starting at 0..5; 6-11: the
        // contiguous quadruples; 12-14: three non-contiguous quadruples; 15: all six maps.
        let contiguous = |start: usize, len: usize| {
            let mut v: Vec<usize> = (start..start + len).map(|i| i % 6).collect();
            v.sort_unstable();
            v
        };
        for j in 0..6 {
            assert_eq!(c3_inputs(j), contiguous(j, 3), "column {j}");
            assert_eq!(c3_inputs(j + 6), contiguous(j, 4), "column {}", j + 6);
        }
        for j in 12..15 {
            let inputs = c3_inputs(j);
            assert_eq!(inputs.len(), 4, "column {j}");
            assert!((0..6).all(|s| inputs != contiguous(s, 4)), "column {j}");
        }
        assert_eq!(c3_inputs(15), (0..6).collect::<Vec<_>>());
        let connections: usize = (0..C3_MAPS).map(|j| c3_inputs(j).len()).sum();
        assert_eq!(connections, 60);
        assert!(C3_TABLE.iter().all(|row| row.len() == C3_MAPS));
    }
}
