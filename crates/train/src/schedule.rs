//! Learning-rate schedules, as functions of the optimisation step.

use serde::{Deserialize, Serialize};

/// A learning-rate schedule. Every schedule is a pure function of the step (counted from 0),
/// so a resumed run picks up exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// `base_lr` throughout.
    Constant {
        /// The learning rate.
        base_lr: f64,
    },
    /// `base_lr · gamma^⌊step / step_size⌋`: PyTorch's `StepLR` (a `step_size` of 0 never
    /// decays).
    Step {
        /// The initial learning rate.
        base_lr: f64,
        /// Steps between two multiplications by `gamma`.
        step_size: u64,
        /// The factor.
        gamma: f64,
    },
    /// `base_lr · gamma^(number of milestones ≤ step)`: PyTorch's `MultiStepLR`. He et al.
    /// 2015's CIFAR recipe is 0.1, divided by 10 at 32k and 48k iterations.
    MultiStep {
        /// The initial learning rate.
        base_lr: f64,
        /// Steps at which the rate is multiplied by `gamma`.
        milestones: Vec<u64>,
        /// The factor.
        gamma: f64,
    },
    /// Piecewise-constant values: `values[i]` from `starts[i]` on (`starts[0]` must be 0).
    Piecewise {
        /// First step of each piece.
        starts: Vec<u64>,
        /// Learning rate of each piece.
        values: Vec<f64>,
    },
    /// Linear warm-up from `warmup_lr` to `base_lr` over `warmup` steps, then a half cosine
    /// down to `min_lr` at `total` steps (timm's `CosineLRScheduler` without restarts, per
    /// step).
    Cosine {
        /// Peak learning rate.
        base_lr: f64,
        /// Learning rate at the end.
        min_lr: f64,
        /// Total number of steps.
        total: u64,
        /// Warm-up steps.
        warmup: u64,
        /// Learning rate at step 0 of the warm-up.
        warmup_lr: f64,
    },
}

impl Schedule {
    /// The He et al. 2015 §4.2 CIFAR-10 schedule: 0.1, ÷10 at 32k and 48k iterations (the
    /// paper stops at 64k).
    pub fn resnet_cifar() -> Self {
        Self::MultiStep {
            base_lr: 0.1,
            milestones: vec![32_000, 48_000],
            gamma: 0.1,
        }
    }

    /// LeCun et al. 1998 §III-C: the global learning rate is 0.0005 for the first two
    /// passes, 0.0002 for the next three, 0.0001 for the next three, 0.00005 for the next
    /// four and 0.00001 thereafter. Those values scale the step of the paper's stochastic
    /// diagonal Levenberg–Marquardt method, whose per-parameter step is
    /// `η / (μ + h_kk)`; with plain SGD the same *shape* is kept and `base_lr` replaces
    /// 0.0005 (see docs/lenet.md for the choice).
    pub fn lenet5(base_lr: f64, steps_per_epoch: u64) -> Self {
        let passes = [
            (0u64, 0.0005),
            (2, 0.0002),
            (5, 0.0001),
            (8, 0.00005),
            (12, 0.00001),
        ];
        Self::Piecewise {
            starts: passes.iter().map(|&(p, _)| p * steps_per_epoch).collect(),
            values: passes.iter().map(|&(_, v)| base_lr * v / 0.0005).collect(),
        }
    }

    /// The learning rate at `step`.
    pub fn lr(&self, step: u64) -> f64 {
        match self {
            Self::Constant { base_lr } => *base_lr,
            Self::Step {
                base_lr,
                step_size,
                gamma,
            } => {
                let passed = step.checked_div(*step_size).unwrap_or(0);
                base_lr * gamma.powi(i32::try_from(passed).unwrap_or(i32::MAX))
            }
            Self::MultiStep {
                base_lr,
                milestones,
                gamma,
            } => {
                let passed = milestones.iter().filter(|&&m| m <= step).count();
                base_lr * gamma.powi(passed as i32)
            }
            Self::Piecewise { starts, values } => starts
                .iter()
                .zip(values)
                .take_while(|&(&s, _)| s <= step)
                .last()
                .map_or(values.first().copied().unwrap_or(0.0), |(_, &v)| v),
            Self::Cosine {
                base_lr,
                min_lr,
                total,
                warmup,
                warmup_lr,
            } => {
                if step < *warmup {
                    warmup_lr + (base_lr - warmup_lr) * step as f64 / *warmup as f64
                } else if step >= *total {
                    *min_lr
                } else {
                    let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
                    min_lr + 0.5 * (base_lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet_cifar_divides_by_ten_twice() {
        let s = Schedule::resnet_cifar();
        assert_eq!(s.lr(0), 0.1);
        assert_eq!(s.lr(31_999), 0.1);
        assert!((s.lr(32_000) - 0.01).abs() < 1e-15);
        assert!((s.lr(48_000) - 0.001).abs() < 1e-15);
        assert!((s.lr(63_999) - 0.001).abs() < 1e-15);
    }

    #[test]
    fn step_is_multi_step_at_every_multiple() {
        let step = Schedule::Step {
            base_lr: 0.1,
            step_size: 30,
            gamma: 0.5,
        };
        let multi = Schedule::MultiStep {
            base_lr: 0.1,
            milestones: vec![30, 60, 90],
            gamma: 0.5,
        };
        for s in 0..120 {
            assert_eq!(step.lr(s), multi.lr(s), "step {s}");
        }
        assert_eq!((step.lr(29), step.lr(30), step.lr(90)), (0.1, 0.05, 0.0125));
        let never = Schedule::Step {
            base_lr: 0.1,
            step_size: 0,
            gamma: 0.5,
        };
        assert_eq!(never.lr(1_000), 0.1);
    }

    #[test]
    fn lenet5_follows_the_papers_passes() {
        let s = Schedule::lenet5(0.0005, 100);
        let by_pass: Vec<f64> = (0..14).map(|p| s.lr(p * 100 + 50)).collect();
        assert_eq!(
            by_pass,
            [
                0.0005, 0.0005, 0.0002, 0.0002, 0.0002, 0.0001, 0.0001, 0.0001, 0.00005, 0.00005,
                0.00005, 0.00005, 0.00001, 0.00001
            ]
        );
        // Scaled: the same shape from another base rate.
        assert!((Schedule::lenet5(0.05, 100).lr(250) - 0.02).abs() < 1e-15);
    }

    #[test]
    fn cosine_warms_up_then_decays() {
        let s = Schedule::Cosine {
            base_lr: 1.0,
            min_lr: 0.0,
            total: 110,
            warmup: 10,
            warmup_lr: 0.0,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 0.5).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(110), 0.0);
    }
}
