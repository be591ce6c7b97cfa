//! Medians, ratios, the human table, the pass/fail targets and the JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::targets::Kind;

/// How a metric is measured and shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds for `count` operations; shown as ms, plus µs/op.
    Ops,
    /// Seconds for `count` MiB; shown as ms, plus MiB/s.
    Mib,
    /// Microseconds per call (lower is better).
    Micros,
    /// Bytes (memory).
    Bytes,
}

pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    /// Part of the "metadata and small-file" group that memfs must win by 1.5x against bindfs.
    pub meta_small: bool,
}

pub const METRICS: &[Metric] = &[
    m("create", Unit::Ops, true),
    m("stat_hot", Unit::Ops, true),
    m("stat_cold", Unit::Ops, true),
    m("unlink", Unit::Ops, true),
    m("small_write", Unit::Ops, true),
    m("small_read_cold", Unit::Ops, true),
    m("small_read_warm", Unit::Ops, true),
    m("small_delete", Unit::Ops, true),
    m("seq_write", Unit::Mib, false),
    m("seq_read_cold", Unit::Mib, false),
    m("seq_read_warm", Unit::Mib, false),
    m("getattr_us", Unit::Micros, false),
    m("getattr_p99_us", Unit::Micros, false),
    m("getattr_cpu_us", Unit::Micros, false),
    m("rss_base_bytes", Unit::Bytes, false),
    m("rss_growth_bytes", Unit::Bytes, false),
    m("bytes_per_file", Unit::Bytes, false),
    m("rss_data_empty_bytes", Unit::Bytes, false),
    m("rss_data_warm_bytes", Unit::Bytes, false),
    m("rss_data_full_bytes", Unit::Bytes, false),
    m("rss_data_deleted_bytes", Unit::Bytes, false),
];

const fn m(name: &'static str, unit: Unit, meta_small: bool) -> Metric {
    Metric {
        name,
        unit,
        meta_small,
    }
}

/// Operation counts, to turn times into per-op figures.
pub struct Counts {
    pub files: usize,
    pub small: usize,
    pub seq_mib: usize,
    pub getattr_iters: usize,
    pub mem_files: usize,
    pub data_mib: usize,
}

impl Counts {
    fn of(&self, metric: &str) -> usize {
        match metric {
            "create" | "stat_hot" | "stat_cold" | "unlink" => self.files,
            "seq_write" | "seq_read_cold" | "seq_read_warm" => self.seq_mib,
            "getattr_us" | "getattr_p99_us" | "getattr_cpu_us" => self.getattr_iters,
            "rss_base_bytes" | "rss_growth_bytes" | "bytes_per_file" => self.mem_files,
            "rss_data_empty_bytes"
            | "rss_data_warm_bytes"
            | "rss_data_full_bytes"
            | "rss_data_deleted_bytes" => self.data_mib,
            _ => self.small,
        }
    }
}

#[derive(Default)]
pub struct Results {
    pub samples: BTreeMap<(&'static str, Kind), Vec<f64>>,
    pub errors: Vec<String>,
}

impl Results {
    pub fn add(&mut self, metric: &'static str, kind: Kind, value: f64) {
        self.samples.entry((metric, kind)).or_default().push(value);
    }

    pub fn median(&self, metric: &str, kind: Kind) -> Option<f64> {
        self.samples
            .iter()
            .find(|((m, k), _)| *m == metric && *k == kind)
            .and_then(|(_, v)| median(v))
    }

    fn spread(&self, metric: &str, kind: Kind) -> Option<f64> {
        let (_, v) = self
            .samples
            .iter()
            .find(|((m, k), _)| *m == metric && *k == kind)?;
        let med = median(v)?;
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        (med > 0.0).then(|| (hi - lo) / med)
    }

    /// Speed of memfs relative to `other`: other's median time / memfs's median time, so a value
    /// above 1 means memfs is faster.
    pub fn speed_ratio(&self, metric: &str, other: Kind) -> Option<f64> {
        let mine = self.median(metric, Kind::Memfs)?;
        let theirs = self.median(metric, other)?;
        (mine > 0.0).then(|| theirs / mine)
    }
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

pub(crate) fn cell(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

/// The human-readable table.
pub fn table(res: &Results, targets: &[Kind], counts: &Counts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Median wall time per workload in ms (fresh mount per run; spread = (max-min)/median, worst target)."
    );
    let _ = writeln!(
        out,
        "Speed ratios: other target's median time / memfs median time; > 1.00 means memfs is FASTER."
    );
    let _ = write!(out, "{:<16} {:>6}", "workload", "n");
    for k in targets {
        let _ = write!(out, " {:>10}", format!("{k} ms"));
    }
    let _ = writeln!(
        out,
        " {:>14} {:>10} {:>10} {:>7}",
        "memfs per-op", "vs bindfs", "vs tmpfs", "spread"
    );
    for m in METRICS
        .iter()
        .filter(|m| matches!(m.unit, Unit::Ops | Unit::Mib))
    {
        if !targets.iter().any(|k| res.median(m.name, *k).is_some()) {
            continue;
        }
        let n = counts.of(m.name);
        let nlabel = if m.unit == Unit::Mib {
            format!("{n}M")
        } else {
            n.to_string()
        };
        let _ = write!(out, "{:<16} {:>6}", m.name, nlabel);
        for k in targets {
            let _ = write!(
                out,
                " {:>10}",
                cell(res.median(m.name, *k), |s| format!("{:.1}", s * 1e3))
            );
        }
        let per_op = cell(res.median(m.name, Kind::Memfs), |s| match m.unit {
            Unit::Mib => format!("{:.0} MiB/s", n as f64 / s),
            _ => format!("{:.2} us", s * 1e6 / n as f64),
        });
        let spread = targets
            .iter()
            .filter_map(|k| res.spread(m.name, *k))
            .fold(None, |acc: Option<f64>, x| {
                Some(acc.map_or(x, |a| a.max(x)))
            });
        let _ = writeln!(
            out,
            " {:>14} {:>10} {:>10} {:>7}",
            per_op,
            cell(res.speed_ratio(m.name, Kind::Bindfs), |r| format!(
                "{r:.2}x"
            )),
            cell(res.speed_ratio(m.name, Kind::Tmpfs), |r| format!("{r:.2}x")),
            cell(spread, |s| format!("{:.0}%", s * 100.0)),
        );
    }
    if targets
        .iter()
        .any(|k| res.median("getattr_us", *k).is_some())
    {
        let _ = write!(
            out,
            "\nUncached getattr round trip (fstat with attr_timeout=0, mean of {} calls, median over rounds):",
            counts.getattr_iters
        );
        for k in targets {
            let _ = write!(
                out,
                "  {k} {}",
                cell(res.median("getattr_us", *k), |u| format!("{u:.2} us"))
            );
        }
        let _ = writeln!(out);
        if let (Some(p99), Some(cpu)) = (
            res.median("getattr_p99_us", Kind::Memfs),
            res.median("getattr_cpu_us", Kind::Memfs),
        ) {
            let _ = writeln!(
                out,
                "  memfs p99 {p99:.2} us; memfs daemon CPU {cpu:.2} us per getattr (user + system)"
            );
        }
    }
    if let Some(per) = res.median("bytes_per_file", Kind::Memfs) {
        let _ = writeln!(
            out,
            "\nmemfs memory with {} empty files: baseline VmRSS {}, growth {}, {:.0} bytes per file beyond the 7-byte name",
            counts.mem_files,
            cell(res.median("rss_base_bytes", Kind::Memfs), kib),
            cell(res.median("rss_growth_bytes", Kind::Memfs), kib),
            per
        );
    }
    if let Some(deleted) = res.median("rss_data_deleted_bytes", Kind::Memfs) {
        let empty = res.median("rss_data_empty_bytes", Kind::Memfs);
        let warm = res.median("rss_data_warm_bytes", Kind::Memfs);
        let vs = |base: f64| format!("{:+.1}%", (deleted / base - 1.0) * 100.0);
        let _ = writeln!(
            out,
            "\nmemfs memory with {} MiB of data (+ as many 4 KiB files): VmRSS empty {}, warm empty {}, full {}, after deleting everything {} ({} of empty, {} of warm empty)",
            counts.data_mib,
            cell(empty, kib),
            cell(warm, kib),
            cell(res.median("rss_data_full_bytes", Kind::Memfs), kib),
            kib(deleted),
            cell(empty, vs),
            cell(warm, vs),
        );
    }
    out
}

fn kib(b: f64) -> String {
    format!("{:.0} KiB", b / 1024.0)
}

pub struct Verdict {
    pub name: String,
    pub value: Option<f64>,
    pub goal: String,
    /// None: not measured in this run.
    pub pass: Option<bool>,
}

/// The performance targets.
pub fn verdicts(res: &Results) -> Vec<Verdict> {
    let mut v = Vec::new();
    for m in METRICS.iter().filter(|m| m.meta_small) {
        let r = res.speed_ratio(m.name, Kind::Bindfs);
        v.push(Verdict {
            name: format!("{} memfs vs bindfs", m.name),
            value: r,
            goal: ">= 1.50x".into(),
            pass: r.map(|r| r >= 1.5),
        });
    }
    let r = res.speed_ratio("seq_read_warm", Kind::Tmpfs);
    v.push(Verdict {
        name: "seq_read_warm memfs vs tmpfs".into(),
        value: r,
        goal: ">= 0.90x".into(),
        pass: r.map(|r| r >= 0.9),
    });
    let b = res.median("bytes_per_file", Kind::Memfs);
    v.push(Verdict {
        name: "memfs bytes per empty file".into(),
        value: b,
        goal: "< 300 B".into(),
        pass: b.map(|b| b < 300.0),
    });
    let r = res
        .median("rss_data_deleted_bytes", Kind::Memfs)
        .zip(res.median("rss_data_warm_bytes", Kind::Memfs))
        .map(|(deleted, warm)| deleted / warm);
    v.push(Verdict {
        name: "memfs RSS deleted vs warm empty".into(),
        value: r,
        goal: "<= 1.10x".into(),
        pass: r.map(|r| r <= 1.1),
    });
    v
}

pub fn verdict_table(v: &[Verdict]) -> String {
    let mut out = String::from("\nTargets:\n");
    for x in v {
        let val = cell(x.value, |f| {
            if x.goal.ends_with('B') {
                format!("{f:.0} B")
            } else {
                format!("{f:.2}x")
            }
        });
        let verdict = match x.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a (not measured)",
        };
        let _ = writeln!(
            out,
            "  {:<34} {:>10}  goal {:<9} {verdict}",
            x.name, val, x.goal
        );
    }
    out
}

pub(crate) fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn json_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "null".into(), json_num)
}

/// One line of JSON with the configuration, every sample, medians, ratios, verdicts and errors.
pub fn json(res: &Results, targets: &[Kind], config: &[(&str, String)], v: &[Verdict]) -> String {
    let mut o = String::from("{\"bench\":\"puffs-bench\",\"config\":{");
    let cfg: Vec<String> = config
        .iter()
        .map(|(k, val)| format!("{}:{}", json_str(k), json_str(val)))
        .collect();
    o.push_str(&cfg.join(","));
    o.push_str("},\"metrics\":{");
    let mut first = true;
    for m in METRICS {
        if !targets
            .iter()
            .any(|k| res.samples.contains_key(&(m.name, *k)))
        {
            continue;
        }
        if !first {
            o.push(',');
        }
        first = false;
        let _ = write!(o, "{}:{{", json_str(m.name));
        let mut parts = Vec::new();
        for k in targets {
            if let Some(s) = res.samples.get(&(m.name, *k)) {
                let samples: Vec<String> = s.iter().map(|x| json_num(*x)).collect();
                parts.push(format!(
                    "{}:{{\"median\":{},\"samples\":[{}]}}",
                    json_str(k.name()),
                    json_opt(median(s)),
                    samples.join(",")
                ));
            }
        }
        if matches!(m.unit, Unit::Ops | Unit::Mib) {
            parts.push(format!(
                "\"memfs_speed_vs_bindfs\":{}",
                json_opt(res.speed_ratio(m.name, Kind::Bindfs))
            ));
            parts.push(format!(
                "\"memfs_speed_vs_tmpfs\":{}",
                json_opt(res.speed_ratio(m.name, Kind::Tmpfs))
            ));
        }
        o.push_str(&parts.join(","));
        o.push('}');
    }
    o.push_str("},\"targets\":[");
    let vs: Vec<String> = v
        .iter()
        .map(|x| {
            format!(
                "{{\"name\":{},\"value\":{},\"goal\":{},\"pass\":{}}}",
                json_str(&x.name),
                json_opt(x.value),
                json_str(&x.goal),
                x.pass.map_or("null".to_string(), |p| p.to_string())
            )
        })
        .collect();
    o.push_str(&vs.join(","));
    o.push_str("],\"errors\":[");
    let es: Vec<String> = res.errors.iter().map(|e| json_str(e)).collect();
    o.push_str(&es.join(","));
    o.push_str("]}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratio_is_speed() {
        let mut r = Results::default();
        r.add("create", Kind::Memfs, 1.0);
        r.add("create", Kind::Bindfs, 3.0);
        assert_eq!(r.speed_ratio("create", Kind::Bindfs), Some(3.0));
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
    }
}
