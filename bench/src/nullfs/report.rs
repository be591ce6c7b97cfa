//! The nullfs suite's table: median time per target and speed relative to native.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{cell, json_str, median};

use super::args::Sizes;
use super::target::Target;

/// Metrics in display order, and what each one's value covers.
pub const METRICS: &[(&str, Per)] = &[
    ("seq_write", Per::Mib),
    ("seq_read_cold", Per::Mib),
    ("seq_read_warm", Per::Mib),
    ("rand_read_cold", Per::Read),
    ("rand_read_warm", Per::Read),
    ("direct_write", Per::Mib),
    ("direct_read", Per::Mib),
    ("direct_rand_read", Per::Read),
    ("fio_libaio_qd1", Per::Iops),
    ("fio_libaio_qd32", Per::Iops),
    ("fio_uring_qd1", Per::Iops),
    ("fio_uring_qd32", Per::Iops),
    ("fio_posixaio_qd1", Per::Iops),
    ("fio_posixaio_qd32", Per::Iops),
    ("fio_uring_qd1_buf", Per::Iops),
    ("fio_uring_qd32_buf", Per::Iops),
    ("create", Per::File),
    ("stat_cold", Per::File),
    ("stat_hot", Per::File),
    ("unlink", Per::File),
    ("small_write", Per::Small),
    ("small_read_cold", Per::Small),
    ("small_read_warm", Per::Small),
    ("small_delete", Per::Small),
    ("build_write", Per::Run),
    ("build_make", Per::Run),
    ("git_add", Per::Run),
    ("git_status_cold", Per::Run),
    ("git_status_warm", Per::Run),
];

/// The data workloads (issue 9: aio=uring >= the best peer on each).
const DATA: &[&str] = &[
    "seq_write",
    "seq_read_cold",
    "seq_read_warm",
    "rand_read_cold",
    "rand_read_warm",
    "fio_libaio_qd1",
    "fio_libaio_qd32",
    "fio_uring_qd1",
    "fio_uring_qd32",
    "fio_uring_qd1_buf",
    "fio_uring_qd32_buf",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Per {
    /// Seconds for the sequential file (shown as MiB/s).
    Mib,
    /// Seconds for the 4 KiB random reads (shown per read).
    Read,
    /// Seconds for the create/stat/unlink files (shown per file).
    File,
    /// Seconds for the small files (shown per file).
    Small,
    /// fio's IOPS (higher is better).
    Iops,
    /// Seconds for one run (shown as such).
    Run,
}

impl Per {
    fn of(self, z: &Sizes) -> usize {
        match self {
            Per::Mib => z.seq_mib,
            Per::Read => z.reads,
            Per::File => z.files,
            Per::Small => z.small,
            Per::Iops | Per::Run => 1,
        }
    }
}

fn per(metric: &str) -> Option<Per> {
    METRICS.iter().find(|(m, _)| *m == metric).map(|(_, p)| *p)
}

/// The progress line's figure for one sample.
pub fn progress(metric: &str, v: f64) -> String {
    match per(metric) {
        Some(Per::Iops) => format!("{metric}={v:.0}iops"),
        None if !metric.ends_with("_create")
            && !metric.ends_with("_list")
            && !metric.ends_with("_unlink") =>
        {
            format!("{metric}={v:.0}")
        }
        _ => format!("{metric}={:.1}ms", v * 1e3),
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

    /// How much faster `t` is than `r` on `metric` (above 1: faster): `r`'s median time /
    /// `t`'s, or `t`'s IOPS / `r`'s.
    pub fn speed(&self, metric: &str, t: Target, r: Target) -> Option<f64> {
        let (a, b) = (self.median(metric, t)?, self.median(metric, r)?);
        let (num, den) = if per(metric) == Some(Per::Iops) {
            (a, b)
        } else {
            (b, a)
        };
        (den > 0.0).then(|| num / den)
    }

    pub fn vs_native(&self, metric: &str, t: Target) -> Option<f64> {
        self.speed(metric, t, Target::Native)
    }

    /// `t`'s speed relative to the faster of bindfs and mergerfs.
    pub fn vs_best_peer(&self, metric: &str, t: Target) -> Option<f64> {
        [Target::Bindfs, Target::Mergerfs]
            .into_iter()
            .filter_map(|p| self.speed(metric, t, p))
            .min_by(f64::total_cmp)
    }
}

/// The figure for one median: MiB/s for sequential, IOPS for fio, seconds for a whole run,
/// µs per op otherwise.
fn rate(v: f64, per: Per, n: usize) -> String {
    match per {
        Per::Mib => format!("{:.0}MiB/s", n as f64 / v),
        Per::Iops => format!("{v:.0}"),
        Per::Run => format!("{v:.2}s"),
        _ => format!("{:.1}us", v * 1e6 / n as f64),
    }
}

/// Column labels: the target names without the common `nullfs-` prefix.
fn short(t: Target) -> &'static str {
    t.name().strip_prefix("nullfs-").unwrap_or(t.name())
}

pub fn table(res: &Results, targets: &[Target], z: &Sizes) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Medians (fresh backing directory and mount per run). MiB/s for seq_* and direct_*, \
         IOPS for fio_*, seconds per run for build/git, microseconds per operation otherwise.\n\
         pt = nullfs with passthrough; uring/posix/linux/threads = nullfs -o nopassthrough,aio=that."
    );
    let header = |out: &mut String| {
        let _ = write!(out, "{:<18} {:>5}", "workload", "n");
        for t in targets {
            let _ = write!(out, " {:>10}", short(*t));
        }
        let _ = writeln!(out);
    };
    header(&mut out);
    let rows = METRICS
        .iter()
        .filter(|(m, _)| targets.iter().any(|t| res.median(m, *t).is_some()));
    for (m, per) in rows.clone() {
        let n = per.of(z);
        let _ = write!(out, "{m:<18} {:>5}", label(*per, n));
        for t in targets {
            let _ = write!(
                out,
                " {:>10}",
                cell(res.median(m, *t), |s| rate(s, *per, n))
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\nSpeed relative to native (1.00 = as fast, above 1 = faster; IOPS ratio for fio_*):"
    );
    header(&mut out);
    for (m, per) in rows {
        let _ = write!(out, "{m:<18} {:>5}", label(*per, per.of(z)));
        for t in targets {
            let _ = write!(
                out,
                " {:>10}",
                cell(res.vs_native(m, *t), |r| format!("{r:.2}x"))
            );
        }
        let _ = writeln!(out);
    }
    out.push_str(&million_lines(res, targets));
    out
}

fn label(per: Per, n: usize) -> String {
    match per {
        Per::Mib => format!("{n}M"),
        Per::Iops => "4k".into(),
        Per::Run => "run".into(),
        _ => n.to_string(),
    }
}

/// The million-file run, one line per nullfs target that did it.
fn million_lines(res: &Results, targets: &[Target]) -> String {
    let mut out = String::new();
    for t in targets {
        let m = |k: &str| res.median(k, *t);
        let (Some(c), Some(l), Some(u)) =
            (m("million_create"), m("million_list"), m("million_unlink"))
        else {
            continue;
        };
        let v = |k: &str| m(k).map_or("?".into(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "\nmillion ({t}, {} files): create {c:.1}s, list {l:.1}s, unlink {u:.1}s; daemon peak {} fds \
             (limit {}), VmHWM {} MiB, RSS after removal {} MiB",
            v("million_files"),
            v("million_peak_fds"),
            v("million_fd_limit"),
            v("million_hwm_mib"),
            v("million_rss_after_mib"),
        );
    }
    out
}

/// One of issue 9's targets: PASS / FAIL (None: not measured in this run) and the figures.
pub struct Verdict {
    pub name: &'static str,
    pub pass: Option<bool>,
    pub detail: String,
}

/// Figures of `ratio` over `metrics` that were measured: their minimum decides.
fn each(
    name: &'static str,
    metrics: &[&str],
    ratio: impl Fn(&str) -> Option<f64>,
    min: f64,
) -> Verdict {
    let got: Vec<(&str, f64)> = metrics
        .iter()
        .filter_map(|m| ratio(m).map(|r| (*m, r)))
        .collect();
    if got.is_empty() {
        return Verdict {
            name,
            pass: None,
            detail: "not measured".into(),
        };
    }
    let worst = got.iter().map(|(_, r)| *r).fold(f64::INFINITY, f64::min);
    let figures: Vec<String> = got.iter().map(|(m, r)| format!("{m} {r:.2}x")).collect();
    Verdict {
        name,
        pass: Some(worst >= min),
        detail: format!("worst {worst:.2}x (need >= {min}x): {}", figures.join(", ")),
    }
}

pub fn verdicts(res: &Results) -> Vec<Verdict> {
    use Target::*;
    let all: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
    let rand = [
        "rand_read_cold",
        "rand_read_warm",
        "fio_libaio_qd1",
        "fio_libaio_qd32",
        "fio_uring_qd1",
        "fio_uring_qd32",
        "fio_uring_qd1_buf",
        "fio_uring_qd32_buf",
    ];
    let meta = [
        "create",
        "stat_cold",
        "unlink",
        "small_write",
        "small_read_cold",
    ];
    let mut v = vec![
        each(
            "passthrough: cold seq read >= 0.97x native",
            &["seq_read_cold"],
            |m| res.vs_native(m, NullfsPt),
            0.97,
        ),
        each(
            "passthrough: warm seq read >= 0.95x native",
            &["seq_read_warm"],
            |m| res.vs_native(m, NullfsPt),
            0.95,
        ),
        each(
            "passthrough: 4 KiB random read >= 0.95x native",
            &rand,
            |m| res.vs_native(m, NullfsPt),
            0.95,
        ),
        each(
            "passthrough: seq write >= 0.95x native",
            &["seq_write"],
            |m| res.vs_native(m, NullfsPt),
            0.95,
        ),
        each(
            "aio=uring: every data workload >= 1.0x best of bindfs/mergerfs",
            DATA,
            |m| res.vs_best_peer(m, NullfsUring),
            1.0,
        ),
        each(
            "aio=uring >= aio=posix everywhere",
            &all,
            |m| res.speed(m, NullfsUring, NullfsPosix),
            1.0,
        ),
        each(
            "create, stat_cold, unlink, small write, cold small read >= 2x best peer",
            &meta,
            |m| res.vs_best_peer(m, NullfsPt),
            2.0,
        ),
        each(
            "cached stat >= 0.9x native",
            &["stat_hot"],
            |m| res.vs_native(m, NullfsPt),
            0.9,
        ),
    ];
    v.push(posix_depth(res));
    v.push(million_verdict(res));
    v
}

/// Issue 9 expects POSIX AIO far behind at queue depth 32 on one file (glibc serves one fd's
/// requests one at a time): fio's posixaio engine against the best of libaio and io_uring at
/// QD32, on native (the application side; nullfs's own aio=posix is in the uring/posix line).
fn posix_depth(res: &Results) -> Verdict {
    let name = "POSIX AIO far behind at QD32 on one file (fio posixaio / best of libaio, io_uring)";
    let behind = |t: Target| -> Option<(f64, f64)> {
        let posix = res.median("fio_posixaio_qd32", t)?;
        let best = ["fio_libaio_qd32", "fio_uring_qd32"]
            .iter()
            .filter_map(|m| res.median(m, t))
            .fold(0.0, f64::max);
        let gain = posix / res.median("fio_posixaio_qd1", t)?;
        (best > 0.0).then_some((posix / best, gain))
    };
    let shown: Vec<String> = Target::ALL
        .into_iter()
        .filter_map(|t| behind(t).map(|(r, g)| format!("{t} {r:.2}x (QD32/QD1 {g:.2}x)")))
        .collect();
    let Some((native, _)) = behind(Target::Native) else {
        return Verdict {
            name,
            pass: None,
            detail: "not measured".into(),
        };
    };
    Verdict {
        name,
        pass: Some(native <= 0.5),
        detail: format!("shown when native <= 0.5x: {}", shown.join(", ")),
    }
}

fn million_verdict(res: &Results) -> Verdict {
    let name = "1,000,000 files created, listed, removed; no fd exhaustion";
    let done = Target::ALL.into_iter().find_map(|t| {
        let m = |k: &str| res.median(k, t);
        Some((
            t,
            m("million_create")?,
            m("million_peak_fds"),
            m("million_fd_limit"),
            m("million_hwm_mib"),
            m("million_files"),
        ))
    });
    let Some((t, create, fds, limit, hwm, files)) = done else {
        let failed = res.errors.iter().any(|e| e.contains("million"));
        return Verdict {
            name,
            pass: failed.then_some(false),
            detail: if failed {
                "failed: see errors".into()
            } else {
                "not run (--million)".into()
            },
        };
    };
    let f = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.0}"));
    Verdict {
        name,
        pass: Some(files.unwrap_or(0.0) >= 1e6),
        detail: format!(
            "{t}: {} files, create {create:.0}s, peak {} fds of {}, daemon VmHWM {} MiB",
            f(files),
            f(fds),
            f(limit),
            f(hwm)
        ),
    }
}

pub fn verdict_lines(v: &[Verdict]) -> String {
    let mut out = String::from("Issue 9 targets:\n");
    for x in v {
        let mark = match x.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "----",
        };
        let _ = writeln!(out, "  {mark}  {}: {}", x.name, x.detail);
    }
    out.push_str(
        "  ----  no extra round trip per buffered write: not measured by this bench \
         (count FUSE requests per write with a tracer)",
    );
    out
}

/// One JSON line: config, medians (seconds; IOPS for fio_*, counts and MiB for million_*
/// figures), ratios to native and the verdicts.
pub fn json(
    res: &Results,
    targets: &[Target],
    config: &[(&str, String)],
    verdicts: &[Verdict],
) -> String {
    let mut out = String::from("{\"suite\":\"nullfs\",\"config\":{");
    let cfg: Vec<String> = config
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
        .collect();
    out.push_str(&cfg.join(","));
    let mut metrics: Vec<&str> = res.samples.keys().map(|(m, _)| m.as_str()).collect();
    metrics.dedup();
    let object = |f: &dyn Fn(&str, Target) -> Option<f64>| -> String {
        let rows: Vec<String> = metrics
            .iter()
            .filter_map(|m| {
                let cells: Vec<String> = targets
                    .iter()
                    .filter_map(|t| f(m, *t).map(|v| format!("{}:{v:.6}", json_str(t.name()))))
                    .collect();
                (!cells.is_empty()).then(|| format!("{}:{{{}}}", json_str(m), cells.join(",")))
            })
            .collect();
        format!("{{{}}}", rows.join(","))
    };
    out.push_str("},\"median\":");
    out.push_str(&object(&|m, t| res.median(m, t)));
    out.push_str(",\"vs_native\":");
    out.push_str(&object(&|m, t| per(m).and_then(|_| res.vs_native(m, t))));
    out.push_str(",\"verdicts\":[");
    let vs: Vec<String> = verdicts
        .iter()
        .map(|v| {
            let pass = v.pass.map_or("null".to_string(), |p| p.to_string());
            format!(
                "{{\"target\":{},\"pass\":{pass},\"detail\":{}}}",
                json_str(v.name),
                json_str(&v.detail)
            )
        })
        .collect();
    out.push_str(&vs.join(","));
    out.push_str("],\"errors\":[");
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
    fn iops_ratio_is_target_over_reference_and_peers_take_the_best() {
        let mut r = Results::default();
        r.add("fio_uring_qd32", Target::Native, 1000.0);
        r.add("fio_uring_qd32", Target::NullfsUring, 500.0);
        r.add("fio_uring_qd32", Target::Bindfs, 250.0);
        r.add("fio_uring_qd32", Target::Mergerfs, 400.0);
        assert_eq!(
            r.vs_native("fio_uring_qd32", Target::NullfsUring),
            Some(0.5)
        );
        assert_eq!(
            r.vs_best_peer("fio_uring_qd32", Target::NullfsUring),
            Some(1.25)
        );
        r.add("create", Target::NullfsPt, 1.0);
        r.add("create", Target::Bindfs, 3.0);
        r.add("create", Target::Mergerfs, 2.5);
        assert_eq!(r.vs_best_peer("create", Target::NullfsPt), Some(2.5));
    }

    #[test]
    fn verdicts_pass_fail_and_not_measured() {
        let mut r = Results::default();
        r.add("seq_read_cold", Target::Native, 1.0);
        r.add("seq_read_cold", Target::NullfsPt, 1.02);
        r.add("stat_hot", Target::Native, 1.0);
        r.add("stat_hot", Target::NullfsPt, 2.0);
        let v = verdicts(&r);
        let find = |s: &str| v.iter().find(|x| x.name.starts_with(s)).unwrap();
        assert_eq!(find("passthrough: cold seq").pass, Some(true));
        assert_eq!(find("cached stat").pass, Some(false));
        assert!(find("cached stat").detail.contains("0.50x"));
        assert_eq!(find("passthrough: seq write").pass, None);
        assert_eq!(find("1,000,000").pass, None);
        assert_eq!(find("POSIX AIO far behind").pass, None);
        for (m, v) in [("fio_posixaio_qd1", 100.0), ("fio_posixaio_qd32", 120.0)] {
            r.add(m, Target::Native, v);
        }
        r.add("fio_libaio_qd32", Target::Native, 600.0);
        r.add("fio_uring_qd32", Target::Native, 480.0);
        let v = verdicts(&r);
        let p = v
            .iter()
            .find(|x| x.name.starts_with("POSIX AIO far"))
            .unwrap();
        assert_eq!(p.pass, Some(true));
        assert!(
            p.detail.contains("native 0.20x (QD32/QD1 1.20x)"),
            "{}",
            p.detail
        );
        r.add("million_create", Target::NullfsPt, 100.0);
        r.add("million_peak_fds", Target::NullfsPt, 40.0);
        r.add("million_files", Target::NullfsPt, 1e6);
        let v = verdicts(&r);
        let m = v.iter().find(|x| x.name.starts_with("1,000,000")).unwrap();
        assert_eq!(m.pass, Some(true));
        assert!(m.detail.contains("peak 40 fds"));
        let line = json(
            &r,
            &[Target::Native, Target::NullfsPt],
            &[("rounds", "1".into())],
            &v,
        );
        assert!(line.starts_with("{\"suite\":\"nullfs\""));
        assert!(line.contains("\"million_peak_fds\":{\"nullfs-pt\":40.000000}"));
        assert!(line.contains("\"pass\":false"));
    }

    #[test]
    fn rates_per_unit() {
        assert_eq!(rate(2500.4, Per::Iops, 1), "2500");
        assert_eq!(rate(1.234, Per::Run, 1), "1.23s");
        assert_eq!(rate(0.5, Per::Mib, 256), "512MiB/s");
        assert_eq!(rate(0.01, Per::File, 1000), "10.0us");
    }
}
