//! puffs-bench: memfs against a native tmpfs and against bindfs over tmpfs.
//!
//! Runs every workload on every target in interleaved order (memfs, tmpfs, bindfs, memfs, ...)
//! for a number of rounds, each run on a freshly mounted, empty file system, and prints the
//! median per target, speed ratios, pass/fail against the performance targets and one JSON line.
//! This is a benchmark, not a test: it needs root (mount, drop_caches) and takes minutes.
//! See docs/performance.md.

mod nullfs;
mod report;
mod sftp;
mod targets;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use report::{Counts, Results};
use targets::{Caching, Env, Kind};
use workloads::{Sample, INTERRUPTED};

/// A unit of work run on one fresh mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// create, stat_hot, unlink
    Meta,
    StatCold,
    Small,
    Seq,
    Getattr,
    Memory,
    DataMemory,
}

impl Group {
    const ALL: [Group; 7] = [
        Group::Meta,
        Group::StatCold,
        Group::Small,
        Group::Seq,
        Group::Getattr,
        Group::Memory,
        Group::DataMemory,
    ];

    fn name(self) -> &'static str {
        match self {
            Group::Meta => "meta",
            Group::StatCold => "stat_cold",
            Group::Small => "small",
            Group::Seq => "seq",
            Group::Getattr => "getattr",
            Group::Memory => "memory",
            Group::DataMemory => "data_memory",
        }
    }

    /// Accepts group names and the metric names inside them.
    fn parse(s: &str) -> Option<Vec<Group>> {
        Some(match s {
            "meta" | "create" | "stat_hot" | "unlink" => vec![Group::Meta],
            "stat" => vec![Group::Meta, Group::StatCold],
            "stat_cold" => vec![Group::StatCold],
            "small" | "small_write" | "small_read_cold" | "small_read_warm" | "small_delete" => {
                vec![Group::Small]
            }
            "seq" | "seq_write" | "seq_read_cold" | "seq_read_warm" => vec![Group::Seq],
            "getattr" | "latency" | "getattr_us" => vec![Group::Getattr],
            "memory" | "mem" => vec![Group::Memory],
            "data_memory" | "rss_data" => vec![Group::DataMemory],
            "all" => Group::ALL.to_vec(),
            _ => return None,
        })
    }

    fn caching(self) -> Caching {
        match self {
            Group::StatCold | Group::Getattr => Caching::Uncached,
            _ => Caching::Default,
        }
    }

    fn applies_to(self, kind: Kind) -> bool {
        !matches!(self, Group::Memory | Group::DataMemory) || kind == Kind::Memfs
    }
}

struct Config {
    memfs: PathBuf,
    memfs_opts: Option<String>,
    bindfs_opts: Option<String>,
    rounds: usize,
    files: usize,
    small: usize,
    seq_mib: usize,
    getattr_iters: usize,
    mem_files: usize,
    data_mib: usize,
    groups: Vec<Group>,
    targets: Vec<Kind>,
    dir: PathBuf,
}

const USAGE: &str = "\
usage: puffs-bench [options]   (as root; see docs/performance.md)
       puffs-bench nullfs --help  (nullfs against native, bindfs and mergerfs)
       puffs-bench --suite sftpfs [options]   (sftpfs vs sshfs; --suite sftpfs --help)
  --memfs PATH          memfs binary (default: memfs next to this executable)
  --memfs-opts OPTS     extra -o options for memfs (e.g. to try a caching lever)
  --bindfs-opts OPTS    extra -o options for bindfs
  --targets LIST        comma list of memfs,tmpfs,bindfs (default: all three)
  --no-bindfs           drop bindfs from the targets
  --rounds N            interleaved rounds (default 5)
  --files N             files for create/stat/unlink (default 20000)
  --small N             4 KiB files for the small-file workload (default 5000)
  --seq-mib N           size of the sequential file in MiB (default 1024)
  --getattr-iters N     fstat calls for the getattr round trip (default 100000)
  --mem-files N         empty files for the memfs memory figure (default 100000)
  --data-mib N          MiB of data for the memfs RSS empty/full/deleted figures (default 512)
  --only LIST           comma list of: meta (create,stat_hot,unlink), stat_cold, small, seq,
                        getattr, memory, data_memory; metric names select their group; stat = meta+stat_cold
  --dir PATH            where to make the mount points (default /tmp/puffs-bench.PID)
";

fn parse_args() -> Result<Config, String> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut c = Config {
        memfs: exe_dir.join("memfs"),
        memfs_opts: None,
        bindfs_opts: None,
        rounds: 5,
        files: 20_000,
        small: 5_000,
        seq_mib: 1024,
        getattr_iters: 100_000,
        mem_files: 100_000,
        data_mib: 512,
        groups: Group::ALL.to_vec(),
        targets: Kind::ALL.to_vec(),
        dir: PathBuf::from(format!("/tmp/puffs-bench.{}", std::process::id())),
    };
    let mut no_bindfs = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |name: &str, v: String| -> Result<usize, String> {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{name}: expected a positive number, got {v:?}")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--memfs" => c.memfs = PathBuf::from(value("--memfs")?),
            "--memfs-opts" => c.memfs_opts = Some(value("--memfs-opts")?),
            "--bindfs-opts" => c.bindfs_opts = Some(value("--bindfs-opts")?),
            "--rounds" => c.rounds = num("--rounds", value("--rounds")?)?,
            "--files" => c.files = num("--files", value("--files")?)?,
            "--small" => c.small = num("--small", value("--small")?)?,
            "--seq-mib" => c.seq_mib = num("--seq-mib", value("--seq-mib")?)?,
            "--getattr-iters" => {
                c.getattr_iters = num("--getattr-iters", value("--getattr-iters")?)?
            }
            "--mem-files" => c.mem_files = num("--mem-files", value("--mem-files")?)?,
            "--data-mib" => c.data_mib = num("--data-mib", value("--data-mib")?)?,
            "--dir" => c.dir = PathBuf::from(value("--dir")?),
            "--no-bindfs" => no_bindfs = true,
            "--targets" => {
                c.targets = value("--targets")?
                    .split(',')
                    .map(|t| Kind::parse(t.trim()).ok_or_else(|| format!("unknown target {t:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--only" => {
                let mut gs = Vec::new();
                for w in value("--only")?.split(',') {
                    let g =
                        Group::parse(w.trim()).ok_or_else(|| format!("unknown workload {w:?}"))?;
                    for x in g {
                        if !gs.contains(&x) {
                            gs.push(x);
                        }
                    }
                }
                // Keep the canonical order whatever order they were named in.
                c.groups = Group::ALL.into_iter().filter(|g| gs.contains(g)).collect();
            }
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    if no_bindfs {
        c.targets.retain(|k| *k != Kind::Bindfs);
    }
    c.targets.sort();
    c.targets.dedup();
    if c.targets.is_empty() {
        return Err("no targets left to run".into());
    }
    Ok(c)
}

fn preflight(c: &Config) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "must run as root (it mounts tmpfs and FUSE file systems and drops caches)".into(),
        );
    }
    if c.targets.contains(&Kind::Memfs) && !c.memfs.is_file() {
        return Err(format!(
            "memfs binary not found at {} (build it: cargo build --release -p fs-examples; \
             or give --memfs PATH; or leave memfs out: --targets tmpfs,bindfs)",
            c.memfs.display()
        ));
    }
    if c.targets.contains(&Kind::Bindfs) {
        let ok = std::process::Command::new("bindfs")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            return Err("bindfs not found (apt-get install bindfs), or use --no-bindfs".into());
        }
    }
    Ok(())
}

fn run_one(env: &Env, c: &Config, group: Group, kind: Kind) -> Result<Vec<Sample>, String> {
    let mounted = env.mount(kind, group.caching())?;
    let path = mounted.path().to_path_buf();
    let result = match group {
        Group::Meta => workloads::meta(&path, c.files),
        Group::StatCold => workloads::stat_cold(&path, c.files),
        Group::Small => workloads::small(&path, c.small),
        Group::Seq => workloads::seq(&path, c.seq_mib),
        Group::Getattr => workloads::getattr_latency(&path, c.getattr_iters, mounted.pid()),
        Group::Memory => match mounted.pid() {
            Some(pid) => workloads::memory(&path, pid, c.mem_files),
            None => Err("memfs daemon process not found in /proc".into()),
        },
        Group::DataMemory => match mounted.pid() {
            Some(pid) => workloads::data_memory(&path, pid, c.data_mib),
            None => Err("memfs daemon process not found in /proc".into()),
        },
    };
    // Say whether a FUSE daemon died under the workload: that is the first thing to know.
    let result = result.map_err(|e| match mounted.pid() {
        Some(pid) if !targets::process_alive(pid) => {
            format!(
                "{e} [{} daemon pid {pid} is gone: crashed?]",
                mounted.kind()
            )
        }
        _ => e,
    });
    let unmounted = mounted.unmount();
    let samples = result?;
    unmounted.map_err(|e| format!("after a successful run: {e}"))?;
    Ok(samples)
}

fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn install_signals() {
    let act = SigAction::new(
        SigHandler::Handler(on_signal_c),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let _ = sigaction(s, &act);
        }
    }
}

extern "C" fn on_signal_c(sig: libc::c_int) {
    on_signal(sig);
}

fn machine() -> Vec<(&'static str, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        .unwrap_or_default();
    let mem = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .map(|l| l.trim_start_matches("MemTotal:").trim().to_string())
        .unwrap_or_default();
    vec![
        (
            "kernel",
            read("/proc/sys/kernel/osrelease").trim().to_string(),
        ),
        (
            "cpus",
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        ("cpu_model", cpu),
        ("mem_total", mem),
    ]
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("nullfs") {
        return nullfs::main(std::env::args().skip(2));
    }
    if let Some(code) = sftp::main_if_selected() {
        return code;
    }
    let c = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("puffs-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = preflight(&c) {
        eprintln!("puffs-bench: {e}");
        return ExitCode::from(2);
    }
    install_signals();
    let env = match Env::create(
        c.dir.clone(),
        c.memfs.clone(),
        c.memfs_opts.clone(),
        c.bindfs_opts.clone(),
    )
    .and_then(|mut env| {
        env.base = env
            .base
            .canonicalize()
            .map_err(|e| format!("{}: {e}", env.base.display()))?;
        Ok(env)
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("puffs-bench: {e}");
            return ExitCode::from(2);
        }
    };

    let mut config: Vec<(&str, String)> = vec![
        ("rounds", c.rounds.to_string()),
        ("files", c.files.to_string()),
        ("small", c.small.to_string()),
        ("seq_mib", c.seq_mib.to_string()),
        ("getattr_iters", c.getattr_iters.to_string()),
        ("mem_files", c.mem_files.to_string()),
        ("data_mib", c.data_mib.to_string()),
        (
            "targets",
            c.targets
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "workloads",
            c.groups
                .iter()
                .map(|g| g.name())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("memfs", c.memfs.display().to_string()),
        ("memfs_opts", c.memfs_opts.clone().unwrap_or_default()),
        ("bindfs_opts", c.bindfs_opts.clone().unwrap_or_default()),
    ];
    config.extend(machine());
    let find = |k: &str| config.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    eprintln!(
        "puffs-bench: {} round(s) of [{}] on [{}] under {}",
        c.rounds,
        find("workloads").unwrap_or_default(),
        find("targets").unwrap_or_default(),
        env.base.display()
    );

    let started = Instant::now();
    let mut res = Results::default();
    'rounds: for round in 1..=c.rounds {
        for &group in &c.groups {
            for &kind in &c.targets {
                if !group.applies_to(kind) {
                    continue;
                }
                if INTERRUPTED.load(Ordering::Relaxed) {
                    break 'rounds;
                }
                let t = Instant::now();
                match run_one(&env, &c, group, kind) {
                    Ok(samples) => {
                        let shown: Vec<String> = samples
                            .iter()
                            .map(|(m, v)| match *m {
                                m if m.ends_with("_us") => format!("{m}={v:.2}"),
                                m if m.contains("bytes") => format!("{m}={v:.0}"),
                                m => format!("{m}={:.1}ms", v * 1e3),
                            })
                            .collect();
                        eprintln!(
                            "[round {round}/{}] {:<9} {:<6} {} ({:.1}s)",
                            c.rounds,
                            group.name(),
                            kind.name(),
                            shown.join(" "),
                            t.elapsed().as_secs_f64()
                        );
                        for (m, v) in samples {
                            res.add(m, kind, v);
                        }
                    }
                    Err(_) if INTERRUPTED.load(Ordering::Relaxed) => break 'rounds,
                    Err(e) => {
                        let msg = format!("round {round}, {kind}, {}: {e}", group.name());
                        eprintln!("[round {round}/{}] ERROR {msg}", c.rounds);
                        res.errors.push(msg);
                    }
                }
            }
        }
    }
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    config.push((
        "elapsed_s",
        format!("{:.1}", started.elapsed().as_secs_f64()),
    ));
    if interrupted {
        config.push(("interrupted", "true".into()));
    }

    let counts = Counts {
        files: c.files,
        small: c.small,
        seq_mib: c.seq_mib,
        getattr_iters: c.getattr_iters,
        mem_files: c.mem_files,
        data_mib: c.data_mib,
    };
    println!();
    print!("{}", report::table(&res, &c.targets, &counts));
    let verdicts = report::verdicts(&res);
    print!("{}", report::verdict_table(&verdicts));
    if !res.errors.is_empty() {
        println!("\nErrors ({}):", res.errors.len());
        for e in &res.errors {
            println!("  {e}");
        }
    }
    println!("{}", report::json(&res, &c.targets, &config, &verdicts));
    drop(env);
    if interrupted {
        ExitCode::from(130)
    } else if res.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
