//! `puffs-bench nullfs`: nullfs against the native directory it serves and against Debian's
//! bindfs and mergerfs over the same backing directory.
//!
//! Every workload runs on every target in interleaved order, the starting target rotating from
//! round to round, each run on a fresh, empty backing directory under `--dir` (on the root file
//! system by default) with a fresh mount over it. Prints medians, speed relative to native, a
//! PASS/FAIL line per issue 9 target and one JSON line. A benchmark, not a test: needs root.
//! See docs/performance.md.
//!
//! Files: `args.rs` (command line, sizes), `target.rs` (the file systems and their mounts),
//! `workloads.rs` (stat_cold, random and O_DIRECT reads), `fio.rs`, `build.rs` (C project and
//! git tree), `million.rs` (the million-file run), `report.rs` (tables, verdicts, JSON).

mod args;
mod build;
mod fio;
mod million;
mod report;
mod target;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::workloads::{self as shared, Sample, INTERRUPTED};
use args::{parse_args, Config, Group, Sizes, USAGE};
use report::Results;
use target::{Env, Target};

fn default_env() -> Env {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    Env {
        base: PathBuf::from(format!(
            "/var/tmp/puffs-bench-nullfs.{}",
            std::process::id()
        )),
        nullfs: exe_dir.join("nullfs"),
        nullfs_opts: None,
        bindfs_opts: None,
        mergerfs_opts: None,
    }
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
    let wants = |g: Group| c.groups.contains(&g);
    let tools: &[(&str, &[&str], bool)] = &[
        ("fio", &["--version"], wants(Group::Fio)),
        ("make", &["--version"], wants(Group::Build)),
        ("cc", &["--version"], wants(Group::Build)),
        ("git", &["--version"], wants(Group::Build)),
    ];
    for (prog, args, needed) in tools {
        if *needed && Command::new(prog).args(*args).output().is_err() {
            return Err(format!(
                "{prog} not found: install it, or leave its workload out with --only"
            ));
        }
    }
    Ok(())
}

/// The samples of one run, and the failures that did not stop it (a fio job).
type Outcome = (Vec<Sample>, Vec<String>);

fn run_one(c: &Config, group: Group, t: Target) -> Result<Outcome, String> {
    let mounted = c.env.mount(t)?;
    let path = mounted.path().to_path_buf();
    let z = &c.sizes;
    let result = match group {
        Group::Fio => fio::run(&path, z.fio_mib, z.fio_secs),
        _ => run_group(group, &path, z, mounted.pid()).map(|s| (s, Vec::new())),
    };
    let result = result.map_err(|e| match mounted.pid() {
        Some(pid) if !crate::targets::process_alive(pid) => {
            format!("{e} [{t} daemon pid {pid} is gone: crashed?]")
        }
        _ => e,
    });
    let unmounted = mounted.unmount();
    let outcome = result?;
    unmounted.map_err(|e| format!("after a successful run: {e}"))?;
    Ok(outcome)
}

/// The groups whose failure ends their run.
fn run_group(
    group: Group,
    path: &Path,
    z: &Sizes,
    pid: Option<i32>,
) -> Result<Vec<Sample>, String> {
    let path = path.to_path_buf();
    match group {
        Group::Seq => shared::seq(&path, z.seq_mib).and_then(|mut s| {
            s.extend(workloads::rand_read(&path, z.seq_mib, z.reads)?);
            Ok(s)
        }),
        Group::Direct => workloads::direct(&path, z.seq_mib, z.reads),
        Group::Fio => unreachable!("run_one runs fio"),
        Group::Meta => shared::meta(&path, z.files),
        Group::StatCold => workloads::stat_cold(&path, z.files),
        Group::Small => shared::small(&path, z.small),
        Group::Build => build::run_all(&path, z.build_sources, z.git_files),
        Group::Million => match pid {
            Some(pid) => million::run(&path, z.million, pid),
            None => Err("the nullfs daemon's pid was not found".into()),
        },
    }
}

/// Entry point of `puffs-bench nullfs ARGS`.
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let args: Vec<String> = args.collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let parsed = parse_args(args.into_iter(), default_env());
    let mut c = match parsed.and_then(|c| preflight(&c).map(|()| c)) {
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
                if !group.applies_to(t) {
                    continue;
                }
                if INTERRUPTED.load(Ordering::Relaxed) {
                    break 'rounds;
                }
                let at = Instant::now();
                match run_one(&c, group, t) {
                    Ok((samples, failed)) => {
                        for e in failed {
                            let msg = format!("round {} {} {t}: {e}", round + 1, group.name());
                            eprintln!("[error] {msg}");
                            res.errors.push(msg);
                        }
                        let shown: Vec<String> = samples
                            .iter()
                            .map(|(m, v)| report::progress(m, *v))
                            .collect();
                        eprintln!(
                            "[round {}/{}] {:<9} {:<14} {} ({:.1}s)",
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
    println!("{}", report::table(&res, &c.targets, &c.sizes));
    let verdicts = report::verdicts(&res);
    println!("{}", report::verdict_lines(&verdicts));
    let z = &c.sizes;
    let config: Vec<(&str, String)> = vec![
        ("rounds", c.rounds.to_string()),
        (
            "groups",
            c.groups
                .iter()
                .map(|g| g.name())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("files", z.files.to_string()),
        ("small", z.small.to_string()),
        ("seq_mib", z.seq_mib.to_string()),
        ("reads", z.reads.to_string()),
        ("fio_mib", z.fio_mib.to_string()),
        ("fio_secs", z.fio_secs.to_string()),
        ("build_sources", z.build_sources.to_string()),
        ("git_files", z.git_files.to_string()),
        ("million", z.million.to_string()),
        ("targets", names(&c.targets)),
        ("dir", c.env.base.display().to_string()),
        ("nullfs_opts", c.env.nullfs_opts.clone().unwrap_or_default()),
    ];
    println!("{}", report::json(&res, &c.targets, &config, &verdicts));
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
