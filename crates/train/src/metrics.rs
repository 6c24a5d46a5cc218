//! Accuracy accumulators shared by training and `xtask reproduce`, the per-epoch record,
//! and its JSONL, CSV and SVG outputs.

use std::fmt::Write as _;
use std::path::Path;

use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::state::write_atomic;
use crate::{Error, Result};

/// Running top-1 / top-5 counts and loss over batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    /// Examples seen.
    pub n: u64,
    /// Examples whose label is the highest score.
    pub top1: u64,
    /// Examples whose label is among the five highest scores.
    pub top5: u64,
    /// Sum of per-batch mean losses weighted by batch size.
    pub loss_sum: f64,
}

impl TopK {
    /// Adds a batch of scores `[N, C]` and labels `[N]`. Ties are broken towards the lower
    /// class index, as `torch.topk` on CPU does in practice; they do not occur with real
    /// scores.
    pub fn update(&mut self, logits: &Tensor, labels: &Tensor) -> Result<()> {
        let scores: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
        let labels: Vec<u32> = labels.to_dtype(DType::U32)?.to_vec1()?;
        if scores.len() != labels.len() {
            return Err(Error::Config(format!(
                "{} score rows for {} labels",
                scores.len(),
                labels.len()
            )));
        }
        for (row, &label) in scores.iter().zip(&labels) {
            let label = label as usize;
            let Some(&own) = row.get(label) else {
                return Err(Error::Config(format!(
                    "label {label} for {} classes",
                    row.len()
                )));
            };
            // Rank = number of classes that beat the label (strictly, or equal with a lower index).
            let rank = row
                .iter()
                .enumerate()
                .filter(|&(i, &s)| s > own || (s == own && i < label) || s.is_nan())
                .count();
            self.n += 1;
            self.top1 += u64::from(rank < 1);
            self.top5 += u64::from(rank < 5);
        }
        Ok(())
    }

    /// Adds a batch's mean loss.
    pub fn add_loss(&mut self, mean_loss: f64, batch: usize) {
        self.loss_sum += mean_loss * batch as f64;
    }

    /// Top-1 accuracy in percent.
    pub fn top1_pct(&self) -> f64 {
        pct(self.top1, self.n)
    }

    /// Top-5 accuracy in percent.
    pub fn top5_pct(&self) -> f64 {
        pct(self.top5, self.n)
    }

    /// Mean loss.
    pub fn loss(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.loss_sum / self.n as f64
        }
    }
}

fn pct(k: u64, n: u64) -> f64 {
    if n == 0 {
        f64::NAN
    } else {
        100.0 * k as f64 / n as f64
    }
}

/// Argmax of each row.
pub fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(logits.to_dtype(DType::F32)?.argmax(D::Minus1)?.to_vec1()?)
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: u64,
    /// Optimisation steps done at its end.
    pub step: u64,
    /// Learning rate of its last step.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training error in percent (on augmented batches, in training mode).
    pub train_err: f64,
    /// Test loss.
    pub test_loss: Option<f64>,
    /// Test top-1 error in percent.
    pub test_err: Option<f64>,
    /// Test top-5 error in percent.
    pub test_top5_err: Option<f64>,
    /// Training throughput over the epoch.
    pub images_per_sec: f64,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
}

const CSV_HEADER: &str =
    "epoch,step,lr,train_loss,train_err,test_loss,test_err,test_top5_err,images_per_sec,seconds";

impl EpochRecord {
    fn csv(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        format!(
            "{},{},{},{},{},{},{},{},{},{}",
            self.epoch,
            self.step,
            self.lr,
            self.train_loss,
            self.train_err,
            opt(self.test_loss),
            opt(self.test_err),
            opt(self.test_top5_err),
            self.images_per_sec,
            self.seconds
        )
    }
}

/// Writes `metrics.jsonl`, `metrics.csv` and `curves.svg` in `dir` for all `records`.
/// Everything is rewritten each time (records are few), each file atomically, so a resumed
/// run's files stay whole and a run killed mid-write leaves the previous ones, which
/// `--resume` reads back.
pub fn write_all(dir: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut jsonl = String::new();
    let mut csv = format!("{CSV_HEADER}\n");
    for r in records {
        jsonl.push_str(&serde_json::to_string(r).map_err(|e| Error::Msg(e.to_string()))?);
        jsonl.push('\n');
        csv.push_str(&r.csv());
        csv.push('\n');
    }
    write_atomic(&dir.join("metrics.jsonl"), jsonl.as_bytes())?;
    write_atomic(&dir.join("metrics.csv"), csv.as_bytes())?;
    write_atomic(&dir.join("curves.svg"), curves_svg(records).as_bytes())
}

/// Reads the records of a `metrics.jsonl`.
pub fn read_jsonl(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::Checkpoint(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Two panels, loss and error (%), train and test, against the epoch.
pub fn curves_svg(records: &[EpochRecord]) -> String {
    let series = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter_map(|r| f(r).filter(|v| v.is_finite()).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let panels = [
        (
            "loss",
            series(&|r| Some(r.train_loss)),
            series(&|r| r.test_loss),
        ),
        (
            "error (%)",
            series(&|r| Some(r.train_err)),
            series(&|r| r.test_err),
        ),
    ];
    let (pw, ph, margin) = (420.0, 280.0, 48.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * pw,
        ph
    );
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, (title, train, test)) in panels.iter().enumerate() {
        let x0 = i as f64 * pw;
        let all: Vec<&(f64, f64)> = train.iter().chain(test).collect();
        let (xmin, xmax) = bounds(all.iter().map(|p| p.0));
        let (ymin, ymax) = bounds(all.iter().map(|p| p.1));
        let ymin = ymin.min(0.0);
        let sx = |x: f64| x0 + margin + (x - xmin) / (xmax - xmin) * (pw - 1.5 * margin);
        let sy = |y: f64| ph - margin + (ymin - y) / (ymax - ymin) * (ph - 1.5 * margin);
        let _ = write!(
            svg,
            r#"<text x="{}" y="16" text-anchor="middle">{title}</text><rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="black"/>"#,
            x0 + pw / 2.0,
            x0 + margin,
            0.5 * margin,
            pw - 1.5 * margin,
            ph - 1.5 * margin
        );
        for (label, v) in [(format!("{ymax:.3}"), ymax), (format!("{ymin:.3}"), ymin)] {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
                x0 + margin - 4.0,
                sy(v) + 4.0
            );
        }
        for (label, v) in [(format!("{xmin}"), xmin), (format!("{xmax}"), xmax)] {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{label}</text>"#,
                sx(v),
                ph - margin + 14.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
            x0 + pw / 2.0,
            ph - 8.0
        );
        for (points, colour, name, dy) in [
            (train, "#1f77b4", "train", 0.0),
            (test, "#d62728", "test", 14.0),
        ] {
            if points.is_empty() {
                continue;
            }
            let path: Vec<String> = points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" fill="{colour}">{name}</text>"#,
                path.join(" "),
                x0 + pw - 0.5 * margin - 40.0,
                0.5 * margin + 14.0 + dy
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn top_k_counts_ranks() -> Result<()> {
        let dev = Device::Cpu;
        let logits = Tensor::new(
            &[
                [0.9f32, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            ],
            &dev,
        )?;
        let mut m = TopK::default();
        m.update(&logits, &Tensor::new(&[0u32, 2, 1], &dev)?)?;
        // Row 0: label first. Row 1: label 2 has rank 4 (in top 5). Row 2: label 1 has rank 5.
        assert_eq!((m.n, m.top1, m.top5), (3, 1, 2));
        assert!(
            m.update(&logits, &Tensor::new(&[0u32, 9, 1], &dev)?)
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn records_round_trip_and_plot() -> Result<()> {
        let dir =
            std::env::temp_dir().join(format!("convnets-train-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let records: Vec<EpochRecord> = (1..=3)
            .map(|e| EpochRecord {
                epoch: e,
                step: e * 10,
                lr: 0.1,
                train_loss: 1.0 / e as f64,
                train_err: 10.0 / e as f64,
                test_loss: Some(1.1 / e as f64),
                test_err: Some(11.0 / e as f64),
                test_top5_err: None,
                images_per_sec: 100.0,
                seconds: 1.0,
            })
            .collect();
        write_all(&dir, &records)?;
        assert_eq!(read_jsonl(&dir.join("metrics.jsonl"))?, records);
        let csv =
            std::fs::read_to_string(dir.join("metrics.csv")).map_err(|e| Error::io(&dir, e))?;
        assert_eq!(csv.lines().count(), 4);
        let svg =
            std::fs::read_to_string(dir.join("curves.svg")).map_err(|e| Error::io(&dir, e))?;
        assert_eq!(svg.matches("<polyline").count(), 4);
        Ok(())
    }

    #[test]
    fn a_failed_write_leaves_the_previous_metrics_whole() -> Result<()> {
        let dir = std::env::temp_dir().join(format!(
            "convnets-train-metrics-atomic-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let record = |epoch| EpochRecord {
            epoch,
            step: epoch * 10,
            lr: 0.1,
            train_loss: 1.0,
            train_err: 10.0,
            test_loss: None,
            test_err: None,
            test_top5_err: None,
            images_per_sec: 100.0,
            seconds: 1.0,
        };
        let before = vec![record(1)];
        write_all(&dir, &before)?;
        // The write of the next epoch's files fails where a kill would interrupt it: before
        // the new bytes are in place (here, the temporary file cannot be created).
        let tmp = dir.join(".metrics.jsonl.tmp");
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        assert!(write_all(&dir, &[record(1), record(2)]).is_err());
        assert_eq!(read_jsonl(&dir.join("metrics.jsonl"))?, before);
        Ok(())
    }
}
