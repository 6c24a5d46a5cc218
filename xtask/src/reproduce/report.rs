//! The reproduction table: measured rows beside the published ones, as Markdown (stdout),
//! CSV and JSON, with the run's date, machine and settings, and the regression verdict.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use convnets::core::spec::{Accuracy, EvalTransform, Interpolation, Resize};
use serde::Serialize;

/// Whether a row was measured here or is a published number alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Measured,
    Paper,
}

/// A published number a measured row is compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    pub top1: Option<f64>,
    pub top5: Option<f64>,
    pub source: String,
    /// The weights' own published number (torchvision's, timm's, ours for LeNet-5), which a
    /// complete run must reproduce; otherwise the paper's number for the architecture.
    pub own: bool,
}

/// An image a measured row leaves out because it could not be read or decoded
/// (`--skip-unreadable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The file, or the parquet shard and row.
    pub name: String,
    /// Why it could not be read.
    pub reason: String,
}

/// The loader's record of a skip, serialisable (convnets-data does not depend on serde).
impl From<convnets::data::loader::Skipped> for Skipped {
    fn from(s: convnets::data::loader::Skipped) -> Self {
        Self {
            name: s.name,
            reason: s.reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub kind: Kind,
    /// Weights id (measured) or architecture (published).
    pub model: String,
    /// What the row is: the paper's label, or how the weights were obtained.
    pub label: String,
    pub dataset: String,
    pub protocol: String,
    pub images: Option<usize>,
    /// Fewer images than the whole evaluation set: not comparable with a reference.
    pub partial: bool,
    /// Images left out as unreadable; `images` does not count them.
    pub skipped: Vec<Skipped>,
    pub top1: Option<f64>,
    pub top5: Option<f64>,
    pub reference: Option<Reference>,
    pub delta_top1: Option<f64>,
    pub delta_top5: Option<f64>,
    pub params: Option<usize>,
    /// Billions of multiply-accumulates per view (torchvision's "GFLOPS").
    pub gflops: Option<f64>,
    /// `[channels, height, width]` of one view.
    pub input: Option<[usize; 3]>,
    pub resize: Option<String>,
    pub crop_pct: Option<f64>,
    pub interpolation: Option<String>,
    pub images_per_sec: Option<f64>,
    /// sha256 of the weights file evaluated.
    pub sha256: Option<String>,
    /// Measured on weights other than the zoo's (trained by this run with `--train`, or
    /// given with `--weights`), which the label describes.
    pub other_weights: bool,
}

impl Row {
    /// A row with nothing but its identity.
    pub fn new(kind: Kind, model: &str, label: &str, dataset: &str, protocol: String) -> Self {
        Self {
            kind,
            model: model.to_string(),
            label: label.to_string(),
            dataset: dataset.to_string(),
            protocol,
            images: None,
            partial: false,
            skipped: Vec::new(),
            top1: None,
            top5: None,
            reference: None,
            delta_top1: None,
            delta_top5: None,
            params: None,
            gflops: None,
            input: None,
            resize: None,
            crop_pct: None,
            interpolation: None,
            images_per_sec: None,
            sha256: None,
            other_weights: false,
        }
    }

    /// A published result with nothing measured.
    pub fn paper(arch: &str, label: &str, accuracy: &Accuracy) -> Self {
        let mut row = Self::new(
            Kind::Paper,
            arch,
            label,
            accuracy.dataset,
            accuracy.protocol.to_string(),
        );
        row.reference = Some(Reference {
            top1: accuracy.top1,
            top5: accuracy.top5,
            source: accuracy.source.to_string(),
            own: false,
        });
        row
    }

    /// Sets the reference and the differences from it (none for a partial run, whose
    /// numbers are not comparable).
    pub fn compare_with(&mut self, reference: Reference) {
        let partial = self.partial;
        let delta = |a: Option<f64>, b: Option<f64>| (!partial).then(|| Some(a? - b?)).flatten();
        self.delta_top1 = delta(self.top1, reference.top1);
        self.delta_top5 = delta(self.top5, reference.top5);
        self.reference = Some(reference);
    }

    /// The eval transform's columns.
    pub fn set_transform(&mut self, t: &EvalTransform) {
        let shorter = t.resize_shorter_side();
        self.resize = Some(match t.resize {
            Resize::Exact(h, w) => format!("{h}×{w} (warp)"),
            _ => shorter.map_or_else(String::new, |s| s.to_string()),
        });
        self.crop_pct = shorter.map(|s| t.crop.0.max(t.crop.1) as f64 / s as f64);
        self.interpolation = Some(
            match t.interpolation {
                Interpolation::Nearest => "nearest",
                Interpolation::Bilinear => "bilinear",
                Interpolation::Bicubic => "bicubic",
            }
            .to_string(),
        );
    }
}

/// When, where and how the table was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub what: String,
    pub protocol: String,
    pub scales: Option<Vec<usize>>,
    pub limit: Option<usize>,
    pub date: String,
    pub machine: String,
    pub device: String,
    pub threads: usize,
    pub batch_size: usize,
    pub convnets: String,
    pub commit: Option<String>,
    pub imagenet: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub run: RunInfo,
    pub rows: Vec<Row>,
    /// Said under the table: why nothing was measured, when nothing was.
    pub note: Option<String>,
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(String::new, f)
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cells(row: &Row) -> [String; 16] {
    let partial = if row.partial { " *" } else { "" };
    let r = row.reference.as_ref();
    let model = match row.kind {
        Kind::Measured if row.other_weights => format!("`{}`, {}", row.model, row.label),
        Kind::Measured => format!("`{}`", row.model),
        Kind::Paper => format!("{}: {} (published)", row.model, row.label),
    };
    [
        model,
        row.protocol.clone(),
        opt(row.images, |n| format!("{}{partial}", thousands(n))),
        opt(row.top1, |v| format!("{v:.3}")),
        opt(row.top5, |v| format!("{v:.3}")),
        opt(r.and_then(|r| r.top1), |v| format!("{v:.3}")),
        opt(r.and_then(|r| r.top5), |v| format!("{v:.3}")),
        opt(row.delta_top1, |v| format!("{v:+.3}")),
        opt(row.delta_top5, |v| format!("{v:+.3}")),
        opt(r, |r| r.source.replace('|', "/")),
        opt(row.params, thousands),
        opt(row.gflops, |v| {
            // Six decimals for LeNet-5's 0.000417.
            if v < 0.01 {
                format!("{v:.6}")
            } else {
                format!("{v:.3}")
            }
        }),
        opt(row.input, |[c, h, w]| format!("{c}×{h}×{w}")),
        match (&row.crop_pct, &row.resize) {
            (Some(pct), Some(resize)) => format!("{pct:.3} ({resize})"),
            (None, Some(resize)) => resize.clone(),
            _ => String::new(),
        },
        row.interpolation.clone().unwrap_or_default(),
        opt(row.images_per_sec, |v| format!("{v:.1}")),
    ]
}

const HEADER: [&str; 16] = [
    "model",
    "protocol",
    "images",
    "top-1",
    "top-5",
    "ref top-1",
    "ref top-5",
    "Δ top-1",
    "Δ top-5",
    "reference",
    "params",
    "GFLOPs",
    "input",
    "crop (resize)",
    "interpolation",
    "images/s",
];

impl Report {
    /// The table as Markdown, with the run described under it.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## `cargo xtask reproduce {}` ({})\n\n",
            self.run.what, self.run.protocol
        );
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let align: Vec<&str> = HEADER
            .iter()
            .map(|h| match *h {
                "model" | "protocol" | "reference" | "input" | "crop (resize)"
                | "interpolation" => "---",
                _ => "---:",
            })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", cells(row).join(" | "));
        }
        let r = &self.run;
        let _ = write!(
            out,
            "\n{}, {}; device {}, {} thread{}, batch {}; convnets {}{}.",
            r.date,
            r.machine,
            r.device,
            r.threads,
            if r.threads == 1 { "" } else { "s" },
            r.batch_size,
            r.convnets,
            opt(r.commit.as_ref(), |c| format!(" ({c})")),
        );
        out.push_str(
            " top-1/top-5 in percent; GFLOPs are billions of multiply-accumulates per view \
             (torchvision's convention); Δ is measured minus reference.\n",
        );
        if let Some(note) = &self.note {
            let _ = writeln!(out, "\n{note}");
        }
        if let Some(row) = self.rows.iter().find(|r| r.partial) {
            let _ = writeln!(
                out,
                "\n\\* Partial run: {} of the {} images (`--limit` or a subset folder); not \
                 comparable with the published numbers.",
                row.images.map_or_else(String::new, thousands),
                row.dataset
            );
        }
        for row in self.rows.iter().filter(|r| !r.skipped.is_empty()) {
            let n = row.skipped.len();
            let _ = writeln!(
                out,
                "\n`{}`: {n} skipped: {} left out as unreadable (`--skip-unreadable`); the \
                 JSON lists {} with the reason.",
                row.model,
                if n == 1 { "one image" } else { "images" },
                if n == 1 { "it" } else { "them" },
            );
        }
        out
    }

    /// The table as CSV, one row per line, machine-readable numbers.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "kind,model,label,dataset,protocol,images,partial,top1,top5,ref_top1,ref_top5,\
             ref_source,ref_own,delta_top1,delta_top5,params,gflops,input,resize,crop_pct,\
             interpolation,images_per_sec,sha256,other_weights,skipped\n",
        );
        for row in &self.rows {
            let r = row.reference.as_ref();
            let num = |v: Option<f64>| opt(v, |v| v.to_string());
            let fields = [
                match row.kind {
                    Kind::Measured => "measured".to_string(),
                    Kind::Paper => "paper".to_string(),
                },
                row.model.clone(),
                row.label.clone(),
                row.dataset.clone(),
                row.protocol.clone(),
                opt(row.images, |n| n.to_string()),
                row.partial.to_string(),
                num(row.top1),
                num(row.top5),
                num(r.and_then(|r| r.top1)),
                num(r.and_then(|r| r.top5)),
                opt(r, |r| r.source.clone()),
                opt(r, |r| r.own.to_string()),
                num(row.delta_top1),
                num(row.delta_top5),
                opt(row.params, |n| n.to_string()),
                num(row.gflops),
                opt(row.input, |[c, h, w]| format!("{c}x{h}x{w}")),
                row.resize.clone().unwrap_or_default(),
                num(row.crop_pct),
                row.interpolation.clone().unwrap_or_default(),
                num(row.images_per_sec),
                row.sha256.clone().unwrap_or_default(),
                row.other_weights.to_string(),
                row.skipped.len().to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }

    /// Writes `<stem>.md`, `<stem>.csv` and `<stem>.json` in `dir`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)? + "\n";
        let mut written = Vec::new();
        for (ext, text) in [("md", self.markdown()), ("csv", self.csv()), ("json", json)] {
            let path = dir.join(format!("{stem}.{ext}"));
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }

    /// Complete runs whose top-1 falls more than `tolerance` points below the weights' own
    /// published top-1.
    pub fn regressions(&self, tolerance: f64) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.kind == Kind::Measured && !r.partial)
            .filter_map(|r| {
                let reference = r.reference.as_ref().filter(|x| x.own)?;
                let (top1, expected) = (r.top1?, reference.top1?);
                (top1 < expected - tolerance).then(|| {
                    format!(
                        "{}: top-1 {top1:.3} is {:.3} points below its published {expected:.3} \
                         ({}; tolerance {tolerance})",
                        r.model,
                        expected - top1,
                        reference.source
                    )
                })
            })
            .collect()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Today's date and time in UTC, `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// This machine in a few words: host name, CPU model, core count.
pub fn machine() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match cpu {
        Some(cpu) => format!("{host} ({cpu}, {cores} cores)"),
        None => format!("{host} ({cores} cores)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use convnets::core::spec::Protocol;

    fn measured(model: &str, top1: f64, images: usize, partial: bool) -> Row {
        let mut row = Row::new(
            Kind::Measured,
            model,
            "",
            "imagenet-1k val",
            Protocol::SingleCrop.to_string(),
        );
        row.top1 = Some(top1);
        row.top5 = Some(90.0);
        row.images = Some(images);
        row.partial = partial;
        row
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            run: RunInfo {
                what: "resnet".into(),
                protocol: "single".into(),
                scales: None,
                limit: None,
                date: "2026-01-02 03:04 UTC".into(),
                machine: "host".into(),
                device: "cpu".into(),
                threads: 2,
                batch_size: 32,
                convnets: "0.1.0".into(),
                commit: None,
                imagenet: None,
            },
            rows,
            note: None,
        }
    }

    #[test]
    fn only_a_complete_run_below_its_own_number_regresses() {
        let own = |top1| Reference {
            top1: Some(top1),
            top5: None,
            source: "meta, with a | and a, comma".into(),
            own: true,
        };
        let mut fine = measured("a.tv_in1k", 76.05, 50_000, false);
        fine.compare_with(own(76.13));
        let mut worse = measured("b.tv_in1k", 75.9, 50_000, false);
        worse.compare_with(own(76.13));
        let mut partial = measured("c.tv_in1k", 10.0, 5, true);
        partial.skipped.push(Skipped {
            name: "val/n01440764/x.JPEG".into(),
            reason: "truncated".into(),
        });
        partial.compare_with(own(76.13));
        assert_eq!(partial.delta_top1, None);
        let mut paper_only = measured("d.tv_in1k", 10.0, 50_000, false);
        paper_only.other_weights = true;
        paper_only.compare_with(Reference {
            own: false,
            ..own(76.13)
        });
        let report = report(vec![fine, worse, partial, paper_only]);

        let regressions = report.regressions(0.1);
        assert_eq!(regressions.len(), 1, "{regressions:?}");
        assert!(regressions[0].starts_with("b.tv_in1k: top-1 75.900 is 0.230 points below"));
        assert!(report.regressions(0.3).is_empty());

        let md = report.markdown();
        assert!(md.contains("| `b.tv_in1k` | single crop | 50,000 | 75.900 | 90.000 | 76.130 |"));
        assert!(md.contains("| -0.230 |"), "{md}");
        assert!(md.contains("meta, with a / and a, comma"));
        assert!(md.contains("| 5 * |") && md.contains("Partial run: 5 of the"));
        assert!(
            md.contains("`c.tv_in1k`: 1 skipped: one image left out"),
            "{md}"
        );
        assert!(!md.contains("`b.tv_in1k`: 0 skipped"));
        let csv = report.csv();
        assert_eq!(csv.lines().count(), 5);
        let skipped: Vec<_> = csv.lines().map(|l| l.rsplit(',').next()).collect();
        assert_eq!(
            skipped,
            [Some("skipped"), Some("0"), Some("0"), Some("1"), Some("0")]
        );
        assert!(csv.contains(",\"meta, with a | and a, comma\",true,"));
        // A row of other weights (--weights, --train) says so in the CSV as in the JSON.
        let other: Vec<_> = csv.lines().map(|l| l.rsplit(',').nth(1)).collect();
        assert_eq!(
            other,
            [
                Some("other_weights"),
                Some("false"),
                Some("false"),
                Some("false"),
                Some("true")
            ]
        );
    }

    #[test]
    fn the_footer_counts_threads() {
        let mut r = report(Vec::new());
        assert!(r.markdown().contains("device cpu, 2 threads, batch 32"));
        r.run.threads = 1;
        assert!(r.markdown().contains("device cpu, 1 thread, batch 32"));
    }

    #[test]
    fn dates_and_numbers() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(thousands(25_557_032), "25,557,032");
        assert_eq!(thousands(999), "999");
    }
}
