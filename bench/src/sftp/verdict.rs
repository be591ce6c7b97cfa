//! Samples, the per-delay table and issue 10's targets for sftpfs against sshfs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::config::Config;
use super::mount::Fs;
use crate::report::{json_str, median};

/// Workload names in table order; the bool marks the metadata ones (target ≥ 1.0x everywhere).
pub const WORKLOADS: [(&str, bool); 5] = [
    ("seq_write", false),
    ("seq_read", false),
    ("create", true),
    ("list", true),
    ("copy_tree", true),
];

#[derive(Default)]
pub struct Samples {
    pub times: BTreeMap<(&'static str, Fs), Vec<f64>>,
    pub errors: Vec<String>,
}

impl Samples {
    pub fn add(&mut self, workload: &'static str, fs: Fs, secs: f64) {
        self.times.entry((workload, fs)).or_default().push(secs);
    }

    fn median(&self, workload: &str, fs: Fs) -> Option<f64> {
        self.times.get(&(workload, fs)).and_then(|v| median(v))
    }

    /// sshfs's median time / sftpfs's: above 1 means sftpfs is faster.
    pub fn speed_ratio(&self, workload: &str) -> Option<f64> {
        let mine = self.median(workload, Fs::Sftpfs)?;
        let theirs = self.median(workload, Fs::Sshfs)?;
        (mine > 0.0).then(|| theirs / mine)
    }

    /// (max - min) / median over both file systems, the worse of the two.
    fn spread(&self, workload: &str) -> Option<f64> {
        Fs::ALL
            .iter()
            .filter_map(|fs| {
                let v = self.times.get(&(workload, *fs))?;
                let med = median(v)?;
                let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                (med > 0.0).then(|| (hi - lo) / med)
            })
            .reduce(f64::max)
    }
}

fn cell(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

pub fn table(s: &Samples, delay: u64, c: &Config, entries: usize) -> String {
    let mut out = format!(
        "\n{delay} ms one-way delay: median wall time in ms over {} rounds; ratio = sshfs / sftpfs (> 1 means sftpfs is faster)\n",
        c.rounds
    );
    let _ = writeln!(
        out,
        "{:<10} {:>7} {:>11} {:>11} {:>8} {:>7}",
        "workload", "n", "sftpfs ms", "sshfs ms", "ratio", "spread"
    );
    for (w, _) in WORKLOADS {
        let n = match w {
            "seq_write" | "seq_read" => format!("{}M", c.seq_mib),
            "create" => c.files.to_string(),
            "list" => entries.to_string(),
            _ => "tree".to_string(),
        };
        let ms = |fs| cell(s.median(w, fs), |t| format!("{:.1}", t * 1e3));
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>11} {:>11} {:>8} {:>7}",
            w,
            n,
            ms(Fs::Sftpfs),
            ms(Fs::Sshfs),
            cell(s.speed_ratio(w), |r| format!("{r:.2}x")),
            cell(s.spread(w), |x| format!("{:.0}%", x * 100.0)),
        );
    }
    for e in &s.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    out
}

pub struct Verdict {
    pub name: String,
    pub value: Option<f64>,
    pub goal: f64,
}

/// OpenSSH's channel window: at most this much data is on its way per round trip on one
/// ssh connection, so one connection reads at most `WINDOW / RTT`.
pub const WINDOW: f64 = (2 << 20) as f64;

impl Samples {
    /// The window-limited rate (bytes/s) from sftpfs's measured round trip, and sftpfs's
    /// sequential read rate as a fraction of it.
    pub fn window(&self, seq_mib: usize) -> Option<(f64, f64, f64)> {
        let rtt = self.median("rtt", Fs::Sftpfs)?;
        let read = self.median("seq_read", Fs::Sftpfs)?;
        let limit = WINDOW / rtt;
        let rate = (seq_mib << 20) as f64 / read;
        Some((rtt, limit, rate / limit))
    }
}

/// The window check of one delay: sftpfs's round trip, what OpenSSH's window allows at
/// that round trip, and the share of it sftpfs's sequential read reached.
pub fn window_line(s: &Samples, delay: u64, c: &Config) -> String {
    let Some((rtt, limit, fraction)) = s.window(c.seq_mib) else {
        return String::new();
    };
    format!(
        "window: sftpfs round trip {:.1} ms (2 x {delay} ms + base {:.1} ms); 2 MiB / RTT = {:.1} MB/s; \
         seq_read {:.1} MB/s = {:.0}% of it with {} connection(s){}\n",
        rtt * 1e3,
        (rtt * 1e3 - 2.0 * delay as f64).max(0.0),
        limit / 1e6,
        fraction * limit / 1e6,
        fraction * 100.0,
        c.connections.unwrap_or(1),
        if c.ssh {
            ""
        } else {
            " (no ssh here: the window applies over --transport ssh)"
        }
    )
}

/// Issue 10's targets: sequential read and write ≥ 1.0x sshfs at 0 ms and ≥ 3x at 25 ms;
/// metadata workloads ≥ 1.0x at every delay; over ssh at 25 ms with one connection,
/// sequential read ≥ 50% of the window-limited rate. Delays without a target give no
/// verdict.
pub fn verdicts(runs: &[(u64, Samples)], c: &Config) -> Vec<Verdict> {
    let mut v = Vec::new();
    for (delay, s) in runs {
        if *delay == 25 && c.ssh && c.connections.unwrap_or(1) == 1 {
            v.push(Verdict {
                name: "seq_read of window at 25 ms".into(),
                value: s.window(c.seq_mib).map(|w| w.2),
                goal: 0.5,
            });
        }
        for (w, meta) in WORKLOADS {
            let goal = match (meta, delay) {
                (true, _) => 1.0,
                (false, 0) => 1.0,
                (false, 25) => 3.0,
                (false, _) => continue,
            };
            v.push(Verdict {
                name: format!("{w} at {delay} ms"),
                value: s.speed_ratio(w),
                goal,
            });
        }
    }
    v
}

/// One JSON line: the run's settings, medians (seconds) per delay, workload and file
/// system, the window check per delay, and the verdicts.
pub fn json(runs: &[(u64, Samples)], verdicts: &[Verdict], c: &Config) -> String {
    let num = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.6}"));
    let mut out = format!(
        "{{\"suite\":\"sftpfs\",\"config\":{{\"transport\":\"{}\",\"connections\":{},\"rounds\":{},\"seq_mib\":{},\"files\":{},\"list_entries\":{}}},\"median_s\":{{",
        if c.ssh { "ssh" } else { "local" },
        c.connections.unwrap_or(1),
        c.rounds,
        c.seq_mib,
        c.files,
        c.list_entries
    );
    let per_delay: Vec<String> = runs
        .iter()
        .map(|(delay, s)| {
            let rows: Vec<String> = std::iter::once("rtt")
                .chain(WORKLOADS.iter().map(|(w, _)| *w))
                .map(|w| {
                    let cells: Vec<String> = Fs::ALL
                        .iter()
                        .filter_map(|fs| {
                            s.median(w, *fs)
                                .map(|t| format!("{}:{t:.6}", json_str(fs.name())))
                        })
                        .collect();
                    format!("{}:{{{}}}", json_str(w), cells.join(","))
                })
                .collect();
            format!("\"{delay}\":{{{}}}", rows.join(","))
        })
        .collect();
    out.push_str(&per_delay.join(","));
    out.push_str("},\"window_fraction\":{");
    let windows: Vec<String> = runs
        .iter()
        .map(|(delay, s)| format!("\"{delay}\":{}", num(s.window(c.seq_mib).map(|w| w.2))))
        .collect();
    out.push_str(&windows.join(","));
    out.push_str("},\"verdicts\":{");
    let vs: Vec<String> = verdicts
        .iter()
        .map(|x| format!("{}:{}", json_str(&x.name), num(x.value)))
        .collect();
    out.push_str(&vs.join(","));
    out.push_str("},\"errors\":[");
    let errs: Vec<String> = runs
        .iter()
        .flat_map(|(_, s)| s.errors.iter().map(|e| json_str(e)))
        .collect();
    out.push_str(&errs.join(","));
    out.push_str("]}");
    out
}

pub fn verdict_table(v: &[Verdict]) -> String {
    let mut out = String::from("\nTargets (sftpfs speed / sshfs speed):\n");
    for x in v {
        let verdict = match x.value {
            Some(r) if r >= x.goal => "PASS",
            Some(_) => "FAIL",
            None => "n/a (not measured)",
        };
        let _ = writeln!(
            out,
            "  {:<22} {:>8}  goal >= {:.1}x  {verdict}",
            x.name,
            cell(x.value, |r| format!("{r:.2}x")),
            x.goal
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_sshfs_over_sftpfs() {
        let mut s = Samples::default();
        s.add("create", Fs::Sftpfs, 1.0);
        s.add("create", Fs::Sshfs, 2.5);
        assert_eq!(s.speed_ratio("create"), Some(2.5));
    }

    #[test]
    fn targets_per_delay() {
        let mut s = Samples::default();
        s.add("seq_read", Fs::Sftpfs, 1.0);
        s.add("seq_read", Fs::Sshfs, 2.0);
        let c = super::super::config::parse(&[]).unwrap();
        let v = verdicts(&[(5, Samples::default()), (25, s)], &c);
        // 5 ms: only the three metadata workloads have a target.
        assert_eq!(v.iter().filter(|x| x.name.ends_with("at 5 ms")).count(), 3);
        let read = v.iter().find(|x| x.name == "seq_read at 25 ms").unwrap();
        assert_eq!((read.value, read.goal), (Some(2.0), 3.0));
        assert!(verdict_table(&v).contains("seq_read at 25 ms"));
        assert!(verdict_table(&v).contains("FAIL"));
        assert!(json(&[], &v, &c).starts_with("{\"suite\":\"sftpfs\""));
    }

    #[test]
    fn window_fraction_from_the_round_trip() {
        let mut s = Samples::default();
        // 50 ms round trip: 2 MiB per 50 ms is 40 MiB/s; 32 MiB read in 1 s is 80% of it.
        s.add("rtt", Fs::Sftpfs, 0.05);
        s.add("seq_read", Fs::Sftpfs, 1.0);
        let (_, limit, fraction) = s.window(32).unwrap();
        assert!((limit - WINDOW * 20.0).abs() < 1.0);
        assert!((fraction - 0.8).abs() < 1e-9, "{fraction}");
    }
}
