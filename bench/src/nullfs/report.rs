//! The nullfs suite's table: median time per target and speed relative to native.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{cell, json_str, median};

use super::target::Target;

/// Metrics in display order, and which count each one's time covers.
pub const METRICS: &[(&str, Per)] = &[
    ("seq_write", Per::Mib),
    ("seq_read_cold", Per::Mib),
    ("seq_read_warm", Per::Mib),
    ("rand_read_cold", Per::Read),
    ("rand_read_warm", Per::Read),
    ("create", Per::File),
    ("stat_cold", Per::File),
    ("stat_hot", Per::File),
    ("unlink", Per::File),
    ("small_write", Per::Small),
    ("small_read_cold", Per::Small),
    ("small_read_warm", Per::Small),
    ("small_delete", Per::Small),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Mib,
    Read,
    File,
    Small,
}

pub struct Counts {
    pub seq_mib: usize,
    pub reads: usize,
    pub files: usize,
    pub small: usize,
}

impl Counts {
    fn of(&self, p: Per) -> usize {
        match p {
            Per::Mib => self.seq_mib,
            Per::Read => self.reads,
            Per::File => self.files,
            Per::Small => self.small,
        }
    }
}

#[derive(Default)]
pub struct Results {
    pub samples: BTreeMap<(String, Target), Vec<f64>>,
    pub errors: Vec<String>,
}

impl Results {
    pub fn add(&mut self, metric: &str, t: Target, secs: f64) {
        self.samples
            .entry((metric.to_string(), t))
            .or_default()
            .push(secs);
    }

    pub fn median(&self, metric: &str, t: Target) -> Option<f64> {
        self.samples
            .get(&(metric.to_string(), t))
            .and_then(|v| median(v))
    }

    /// native's median time / `t`'s: above 1 means `t` is faster than native.
    pub fn vs_native(&self, metric: &str, t: Target) -> Option<f64> {
        let n = self.median(metric, Target::Native)?;
        let m = self.median(metric, t)?;
        (m > 0.0).then(|| n / m)
    }
}

/// Per-op figure for one median time: MiB/s for sequential, µs per op otherwise.
fn rate(secs: f64, per: Per, n: usize) -> String {
    match per {
        Per::Mib => format!("{:.0}MiB/s", n as f64 / secs),
        _ => format!("{:.1}us", secs * 1e6 / n as f64),
    }
}

pub fn table(res: &Results, targets: &[Target], counts: &Counts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Median per workload (fresh backing directory and mount per run): MiB/s for seq_*, \
         microseconds per operation otherwise."
    );
    let header = |out: &mut String| {
        let _ = write!(out, "{:<16} {:>6}", "workload", "n");
        for t in targets {
            let _ = write!(out, " {:>13}", t.name());
        }
        let _ = writeln!(out);
    };
    header(&mut out);
    let rows = METRICS
        .iter()
        .filter(|(m, _)| targets.iter().any(|t| res.median(m, *t).is_some()));
    for (m, per) in rows.clone() {
        let n = counts.of(*per);
        let _ = write!(out, "{m:<16} {:>6}", label(*per, n));
        for t in targets {
            let _ = write!(
                out,
                " {:>13}",
                cell(res.median(m, *t), |s| rate(s, *per, n))
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\nSpeed relative to native (native's median time / the target's; 1.00 = as fast, \
         above 1 = faster):"
    );
    header(&mut out);
    for (m, per) in rows {
        let _ = write!(out, "{m:<16} {:>6}", label(*per, counts.of(*per)));
        for t in targets {
            let _ = write!(
                out,
                " {:>13}",
                cell(res.vs_native(m, *t), |r| format!("{r:.2}x"))
            );
        }
        let _ = writeln!(out);
    }
    out
}

fn label(per: Per, n: usize) -> String {
    if per == Per::Mib {
        format!("{n}M")
    } else {
        n.to_string()
    }
}

/// One JSON line: config, medians (seconds) and ratios to native.
pub fn json(res: &Results, targets: &[Target], config: &[(&str, String)]) -> String {
    let mut out = String::from("{\"suite\":\"nullfs\",\"config\":{");
    let cfg: Vec<String> = config
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
        .collect();
    out.push_str(&cfg.join(","));
    out.push_str("},\"median_s\":{");
    let mut rows = Vec::new();
    for (m, _) in METRICS {
        let cells: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                res.median(m, *t)
                    .map(|v| format!("{}:{v:.6}", json_str(t.name())))
            })
            .collect();
        if !cells.is_empty() {
            rows.push(format!("{}:{{{}}}", json_str(m), cells.join(",")));
        }
    }
    out.push_str(&rows.join(","));
    out.push_str("},\"errors\":[");
    let errs: Vec<String> = res.errors.iter().map(|e| json_str(e)).collect();
    out.push_str(&errs.join(","));
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_native_time_over_target_time() {
        let mut r = Results::default();
        for v in [2.0, 4.0, 3.0] {
            r.add("create", Target::Native, v);
        }
        r.add("create", Target::Bindfs, 6.0);
        assert_eq!(r.vs_native("create", Target::Bindfs), Some(0.5));
        assert_eq!(r.vs_native("create", Target::Mergerfs), None);
    }

    #[test]
    fn rates_per_unit() {
        assert_eq!(rate(0.5, Per::Mib, 256), "512MiB/s");
        assert_eq!(rate(0.01, Per::File, 1000), "10.0us");
    }
}
