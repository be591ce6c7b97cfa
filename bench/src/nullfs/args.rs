//! The nullfs suite's command line: workload groups, sizes (full by default, `--quick` for a
//! short check, `--million` for the million-file run) and targets.

use std::path::PathBuf;

use super::target::{Env, Target};

/// A unit of work run on one fresh mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// seq_write, seq_read_cold/warm, then rand_read_cold/warm on the same file.
    Seq,
    /// The same through O_DIRECT, for nullfs's aio=linux (kernel AIO is asynchronous only
    /// for O_DIRECT files) and native as its reference.
    Direct,
    /// fio 4 KiB random reads, libaio and io_uring, queue depth 1 and 32 (O_DIRECT), and
    /// io_uring buffered.
    Fio,
    /// create, stat_hot, unlink
    Meta,
    StatCold,
    Small,
    /// Write a small C project and build it with make -j2; git add and status over a tree.
    Build,
    /// 1,000,000 files in one directory through nullfs (only with --million / --only million).
    Million,
}

impl Group {
    pub const ALL: [Group; 8] = [
        Group::Seq,
        Group::Direct,
        Group::Fio,
        Group::Meta,
        Group::StatCold,
        Group::Small,
        Group::Build,
        Group::Million,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::Seq => "seq",
            Group::Direct => "direct",
            Group::Fio => "fio",
            Group::Meta => "meta",
            Group::StatCold => "stat_cold",
            Group::Small => "small",
            Group::Build => "build",
            Group::Million => "million",
        }
    }

    fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == s)
    }

    /// Whether `t` takes part: O_DIRECT runs compare native with the nullfs data paths;
    /// the million-file run is for nullfs alone.
    pub fn applies_to(self, t: Target) -> bool {
        match self {
            Group::Direct => matches!(t, Target::Native | Target::NullfsLinux),
            Group::Million => t.is_nullfs(),
            _ => true,
        }
    }
}

/// Sizes of one run of the suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Files for create/stat/unlink.
    pub files: usize,
    /// 4 KiB files written and read back.
    pub small: usize,
    /// The sequential file, MiB.
    pub seq_mib: usize,
    /// 4 KiB random preads at queue depth 1.
    pub reads: usize,
    /// fio's file, MiB, and seconds per fio job.
    pub fio_mib: usize,
    pub fio_secs: usize,
    /// C sources of the build workload and files of the git tree.
    pub build_sources: usize,
    pub git_files: usize,
    /// Files of the million-file run.
    pub million: usize,
}

impl Sizes {
    /// Issue 9's sizes.
    pub const FULL: Sizes = Sizes {
        files: 20_000,
        small: 5_000,
        seq_mib: 1024,
        reads: 2_000,
        fio_mib: 256,
        fio_secs: 3,
        build_sources: 160,
        git_files: 5_000,
        million: 1_000_000,
    };
    /// A check that everything runs, in about a minute.
    pub const QUICK: Sizes = Sizes {
        files: 1_000,
        small: 300,
        seq_mib: 32,
        reads: 300,
        fio_mib: 32,
        fio_secs: 1,
        build_sources: 20,
        git_files: 300,
        million: 20_000,
    };
}

pub struct Config {
    pub rounds: usize,
    pub sizes: Sizes,
    pub groups: Vec<Group>,
    pub targets: Vec<Target>,
    pub env: Env,
}

pub const USAGE: &str = "\
usage: puffs-bench nullfs [options]   (as root; see docs/performance.md)
  --quick               small sizes (about a minute) instead of issue 9's full sizes
  --million             only the million-file run (1,000,000 files, nullfs-pt)
  --nullfs PATH         nullfs binary (default: nullfs next to this executable)
  --nullfs-opts OPTS    extra -o options for every nullfs target
  --bindfs-opts OPTS    extra -o options for bindfs
  --mergerfs-opts OPTS  extra -o options for mergerfs
  --targets LIST        comma list of native,nullfs-pt,nullfs-uring,nullfs-posix,nullfs-linux,
                        nullfs-threads,bindfs,mergerfs (default: all; nullfs-pt is passthrough,
                        the others -o nopassthrough with that aio backend)
  --only LIST           comma list of seq, direct, fio, meta, stat_cold, small, build, million
                        (default: all but million)
  --rounds N            interleaved rounds (default 3)
  --files N             files for create/stat/unlink (default 20000; quick 1000)
  --small N             4 KiB files for the small-file workload (default 5000; quick 300)
  --seq-mib N           size of the sequential file in MiB (default 1024; quick 32)
  --reads N             4 KiB random reads at queue depth 1, cold and warm (default 2000)
  --fio-mib N           fio's file in MiB (default 256; quick 32)
  --fio-secs N          seconds per fio job (default 3; quick 1)
  --build-sources N     C files of the build workload (default 160; quick 20)
  --git-files N         files of the git add/status tree (default 5000; quick 300)
  --million-files N     files of the million-file run (default 1000000)
  --dir PATH            backing directory and mount point go here (default /var/tmp/puffs-bench-nullfs.PID)
";

pub fn parse_args(args: impl Iterator<Item = String>, env: Env) -> Result<Config, String> {
    let args: Vec<String> = args.collect();
    let quick = args.iter().any(|a| a == "--quick");
    let million = args.iter().any(|a| a == "--million");
    let mut c = Config {
        rounds: 3,
        sizes: if quick { Sizes::QUICK } else { Sizes::FULL },
        groups: Group::ALL
            .into_iter()
            .filter(|g| *g != Group::Million)
            .collect(),
        targets: Target::ALL.to_vec(),
        env,
    };
    if million {
        c.groups = vec![Group::Million];
        c.targets = vec![Target::NullfsPt];
        c.rounds = 1;
    }
    let mut args = args.into_iter();
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
                _ => Err(format!("{flag}: expected a positive number, got {v:?}")),
            }
        };
        let s = &mut c.sizes;
        match flag.as_str() {
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--quick" | "--million" => {}
            "--nullfs" => c.env.nullfs = PathBuf::from(value()?),
            "--nullfs-opts" => c.env.nullfs_opts = Some(value()?),
            "--bindfs-opts" => c.env.bindfs_opts = Some(value()?),
            "--mergerfs-opts" => c.env.mergerfs_opts = Some(value()?),
            "--rounds" => c.rounds = num(value()?)?,
            "--files" => s.files = num(value()?)?,
            "--small" => s.small = num(value()?)?,
            "--seq-mib" => s.seq_mib = num(value()?)?,
            "--reads" => s.reads = num(value()?)?,
            "--fio-mib" => s.fio_mib = num(value()?)?,
            "--fio-secs" => s.fio_secs = num(value()?)?,
            "--build-sources" => s.build_sources = num(value()?)?,
            "--git-files" => s.git_files = num(value()?)?,
            "--million-files" => s.million = num(value()?)?,
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
    if !c
        .groups
        .iter()
        .any(|g| c.targets.iter().any(|t| g.applies_to(*t)))
    {
        return Err("no selected workload applies to the selected targets".into());
    }
    Ok(c)
}

fn list<T>(s: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|w| parse(w.trim()).ok_or_else(|| format!("unknown {what} {w:?}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            base: PathBuf::from("/nonexistent"),
            nullfs: PathBuf::from("nullfs"),
            nullfs_opts: None,
            bindfs_opts: None,
            mergerfs_opts: None,
        }
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        parse_args(args.iter().map(|s| s.to_string()), env())
    }

    #[test]
    fn defaults_are_the_issue_sizes_without_the_million_run() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.sizes, Sizes::FULL);
        assert_eq!(
            (c.sizes.files, c.sizes.small, c.sizes.seq_mib),
            (20_000, 5_000, 1024)
        );
        assert!(!c.groups.contains(&Group::Million));
        assert_eq!(c.groups.len(), Group::ALL.len() - 1);
        assert_eq!(c.targets.len(), 8);
    }

    #[test]
    fn quick_sets_small_sizes_and_flags_override_them() {
        let c = parse(&["--files=77", "--quick", "--seq-mib", "8"]).unwrap();
        assert_eq!(c.sizes.files, 77);
        assert_eq!(c.sizes.seq_mib, 8);
        assert_eq!(c.sizes.small, Sizes::QUICK.small);
    }

    #[test]
    fn million_runs_alone_on_nullfs() {
        let c = parse(&["--million", "--million-files", "5000"]).unwrap();
        assert_eq!(c.groups, vec![Group::Million]);
        assert_eq!(c.targets, vec![Target::NullfsPt]);
        assert_eq!(c.sizes.million, 5000);
        assert!(parse(&["--only", "million", "--targets", "native,bindfs"]).is_err());
    }

    #[test]
    fn lists_and_numbers_are_checked() {
        let c = parse(&["--targets", "mergerfs,native,native", "--only", "fio,seq"]).unwrap();
        assert_eq!(c.targets, vec![Target::Native, Target::Mergerfs]);
        assert_eq!(c.groups, vec![Group::Seq, Group::Fio]);
        assert!(parse(&["--targets", "nullfs-bogus"]).is_err());
        assert!(parse(&["--only", "seq,nope"]).is_err());
        assert!(parse(&["--files", "0"]).is_err());
        assert!(parse(&["--files", "x"]).is_err());
        assert!(parse(&["--rounds"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }

    #[test]
    fn direct_and_million_skip_the_targets_they_do_not_measure() {
        assert!(Group::Direct.applies_to(Target::Native));
        assert!(Group::Direct.applies_to(Target::NullfsLinux));
        assert!(!Group::Direct.applies_to(Target::NullfsPt));
        assert!(!Group::Direct.applies_to(Target::NullfsUring));
        assert!(!Group::Direct.applies_to(Target::Bindfs));
        assert!(!Group::Million.applies_to(Target::Native));
        assert!(Group::Fio.applies_to(Target::Mergerfs));
    }
}
