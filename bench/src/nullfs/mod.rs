//! `puffs-bench nullfs`: nullfs against the native directory it serves and against Debian's
//! bindfs and mergerfs over the same backing directory.
//!
//! Every workload runs on every target in interleaved order, the starting target rotating from
//! round to round, each run on a fresh, empty backing directory under `--dir` (on the root file
//! system by default) with a fresh mount over it. Prints medians, speed relative to native and
//! one JSON line. A benchmark, not a test: needs root. See docs/performance.md.

mod report;
mod target;
mod workloads;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::workloads::{self as shared, Sample, INTERRUPTED};
use report::{Counts, Results};
use target::{Env, Target};

/// A unit of work run on one fresh mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// seq_write, seq_read_cold/warm, then rand_read_cold/warm on the same file.
    Seq,
    /// create, stat_hot, unlink
    Meta,
    StatCold,
    Small,
}

impl Group {
    const ALL: [Group; 4] = [Group::Seq, Group::Meta, Group::StatCold, Group::Small];

    fn name(self) -> &'static str {
        match self {
            Group::Seq => "seq",
            Group::Meta => "meta",
            Group::StatCold => "stat_cold",
            Group::Small => "small",
        }
    }

    fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == s)
    }
}

struct Config {
    rounds: usize,
    files: usize,
    small: usize,
    seq_mib: usize,
    reads: usize,
    groups: Vec<Group>,
    targets: Vec<Target>,
    env: Env,
}

const USAGE: &str = "\
usage: puffs-bench nullfs [options]   (as root; see docs/performance.md)
  --nullfs PATH         nullfs binary (default: nullfs next to this executable)
  --nullfs-opts OPTS    extra -o options for every nullfs target
  --bindfs-opts OPTS    extra -o options for bindfs
  --mergerfs-opts OPTS  extra -o options for mergerfs
  --targets LIST        comma list of native,nullfs-pt,nullfs-uring,nullfs-posix,bindfs,mergerfs
                        (default: all; nullfs-pt is passthrough, the others -o nopassthrough)
  --only LIST           comma list of seq (with rand_read), meta, stat_cold, small (default: all)
  --rounds N            interleaved rounds (default 3)
  --files N             files for create/stat/unlink (default 5000)
  --small N             4 KiB files for the small-file workload (default 2000)
  --seq-mib N           size of the sequential file in MiB (default 256)
  --reads N             4 KiB random reads, cold and warm (default 2000)
  --dir PATH            backing directory and mount point go here (default /var/tmp/puffs-bench-nullfs.PID)
";

fn parse_args(args: impl Iterator<Item = String>) -> Result<Config, String> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut c = Config {
        rounds: 3,
        files: 5_000,
        small: 2_000,
        seq_mib: 256,
        reads: 2_000,
        groups: Group::ALL.to_vec(),
        targets: Target::ALL.to_vec(),
        env: Env {
            base: PathBuf::from(format!(
                "/var/tmp/puffs-bench-nullfs.{}",
                std::process::id()
            )),
            nullfs: exe_dir.join("nullfs"),
            nullfs_opts: None,
            bindfs_opts: None,
            mergerfs_opts: None,
        },
    };
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let num = |v: String| -> Result<usize, String> {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{a}: expected a positive number, got {v:?}")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--nullfs" => c.env.nullfs = PathBuf::from(value()?),
            "--nullfs-opts" => c.env.nullfs_opts = Some(value()?),
            "--bindfs-opts" => c.env.bindfs_opts = Some(value()?),
            "--mergerfs-opts" => c.env.mergerfs_opts = Some(value()?),
            "--rounds" => c.rounds = num(value()?)?,
            "--files" => c.files = num(value()?)?,
            "--small" => c.small = num(value()?)?,
            "--seq-mib" => c.seq_mib = num(value()?)?,
            "--reads" => c.reads = num(value()?)?,
            "--dir" => c.env.base = PathBuf::from(value()?),
            "--targets" => {
                c.targets = list(&value()?, Target::parse, "target")?;
                c.targets.sort();
                c.targets.dedup();
            }
            "--only" => {
                let gs = list(&value()?, Group::parse, "workload")?;
                c.groups = Group::ALL.into_iter().filter(|g| gs.contains(g)).collect();
            }
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    if c.targets.is_empty() || c.groups.is_empty() {
        return Err("nothing to run".into());
    }
    Ok(c)
}

fn list<T>(s: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|w| parse(w.trim()).ok_or_else(|| format!("unknown {what} {w:?}")))
        .collect()
}

fn preflight(c: &Config) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("must run as root (it mounts FUSE file systems and drops caches)".into());
    }
    let nullfs_wanted = c.targets.iter().any(|t| t.name().starts_with("nullfs"));
    if nullfs_wanted && !c.env.nullfs.is_file() {
        return Err(format!(
            "nullfs binary not found at {} (cargo build --release -p fs-examples --bin nullfs, \
             or --nullfs PATH)",
            c.env.nullfs.display()
        ));
    }
    for (t, prog) in [(Target::Bindfs, "bindfs"), (Target::Mergerfs, "mergerfs")] {
        let runs = Command::new(prog)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty());
        if c.targets.contains(&t) && !runs {
            return Err(format!(
                "{prog} not found (apt-get install {prog}), or leave it out with --targets"
            ));
        }
    }
    Ok(())
}

fn run_one(c: &Config, group: Group, t: Target) -> Result<Vec<Sample>, String> {
    let mounted = c.env.mount(t)?;
    let path = mounted.path().to_path_buf();
    let result = match group {
        Group::Seq => shared::seq(&path, c.seq_mib).and_then(|mut s| {
            s.extend(workloads::rand_read(&path, c.seq_mib, c.reads)?);
            Ok(s)
        }),
        Group::Meta => shared::meta(&path, c.files),
        Group::StatCold => workloads::stat_cold(&path, c.files),
        Group::Small => shared::small(&path, c.small),
    };
    let result = result.map_err(|e| match mounted.pid() {
        Some(pid) if !crate::targets::process_alive(pid) => {
            format!("{e} [{t} daemon pid {pid} is gone: crashed?]")
        }
        _ => e,
    });
    let unmounted = mounted.unmount();
    let samples = result?;
    unmounted.map_err(|e| format!("after a successful run: {e}"))?;
    Ok(samples)
}

/// Entry point of `puffs-bench nullfs ARGS`.
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let mut c = match parse_args(args).and_then(|c| preflight(&c).map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("puffs-bench nullfs: {e}");
            return ExitCode::from(2);
        }
    };
    crate::install_signals();
    if let Err(e) = c.env.prepare() {
        eprintln!("puffs-bench nullfs: {e}");
        return ExitCode::from(2);
    }
    let names = |v: &[Target]| v.iter().map(|t| t.name()).collect::<Vec<_>>().join(",");
    eprintln!(
        "puffs-bench nullfs: {} round(s) on [{}] under {}",
        c.rounds,
        names(&c.targets),
        c.env.base.display()
    );
    let started = Instant::now();
    let mut res = Results::default();
    'rounds: for round in 0..c.rounds {
        for &group in &c.groups {
            // Rotate the starting target so no target always runs first (or last).
            let n = c.targets.len();
            for i in 0..n {
                let t = c.targets[(i + round) % n];
                if INTERRUPTED.load(Ordering::Relaxed) {
                    break 'rounds;
                }
                let at = Instant::now();
                match run_one(&c, group, t) {
                    Ok(samples) => {
                        let shown: Vec<String> = samples
                            .iter()
                            .map(|(m, v)| format!("{m}={:.1}ms", v * 1e3))
                            .collect();
                        eprintln!(
                            "[round {}/{}] {:<9} {:<12} {} ({:.1}s)",
                            round + 1,
                            c.rounds,
                            group.name(),
                            t.name(),
                            shown.join(" "),
                            at.elapsed().as_secs_f64()
                        );
                        for (m, v) in samples {
                            res.add(m, t, v);
                        }
                    }
                    Err(e) => {
                        let msg = format!("round {} {} {t}: {e}", round + 1, group.name());
                        eprintln!("[error] {msg}");
                        res.errors.push(msg);
                    }
                }
            }
        }
    }
    let counts = Counts {
        seq_mib: c.seq_mib,
        reads: c.reads,
        files: c.files,
        small: c.small,
    };
    println!("{}", report::table(&res, &c.targets, &counts));
    let config: Vec<(&str, String)> = vec![
        ("rounds", c.rounds.to_string()),
        ("files", c.files.to_string()),
        ("small", c.small.to_string()),
        ("seq_mib", c.seq_mib.to_string()),
        ("reads", c.reads.to_string()),
        ("targets", names(&c.targets)),
        ("dir", c.env.base.display().to_string()),
        ("nullfs_opts", c.env.nullfs_opts.clone().unwrap_or_default()),
    ];
    println!("{}", report::json(&res, &c.targets, &config));
    eprintln!(
        "puffs-bench nullfs: done in {:.0}s, {} error(s)",
        started.elapsed().as_secs_f64(),
        res.errors.len()
    );
    if INTERRUPTED.load(Ordering::Relaxed) || !res.errors.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
