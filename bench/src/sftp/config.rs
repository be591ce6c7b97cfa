//! The sftpfs suite's command line.

use std::path::PathBuf;

use super::mount::Fs;

pub struct Config {
    pub sftpfs: PathBuf,
    pub relay: PathBuf,
    pub server: PathBuf,
    /// Reach the server over ssh to a private sshd on 127.0.0.1 instead of running it directly.
    pub ssh: bool,
    pub sftpfs_opts: Option<String>,
    pub sshfs_opts: Option<String>,
    pub rounds: usize,
    pub delays: Vec<u64>,
    pub seq_mib: usize,
    pub files: usize,
    pub list_entries: usize,
    pub tree: PathBuf,
    pub dir: PathBuf,
    /// `-o connections=N` for sftpfs (None: its default, 1).
    pub connections: Option<usize>,
    /// Which file systems run (both by default).
    pub fses: Vec<Fs>,
    /// The small sizes (--quick) were asked for.
    pub quick: bool,
}

pub const USAGE: &str = "\
usage: puffs-bench --suite sftpfs [options]   (as root; see docs/performance.md)
  --sftpfs PATH         sftpfs binary (default: sftpfs next to this executable)
  --relay PATH          sftp-relay binary (default: sftp-relay next to this executable)
  --server PATH         the SFTP server both run (default /usr/lib/openssh/sftp-server)
  --transport local|ssh  run the server directly (default) or over ssh to a private sshd
                        on 127.0.0.1 (keys made for the run); the relay sits in front either way
  --sftpfs-opts OPTS    extra -o options for sftpfs
  --sshfs-opts OPTS     extra -o options for sshfs
  --connections N       sftpfs -o connections=N (default: sftpfs's, 1)
  --fs both|sftpfs|sshfs  which file systems run (default both; ratios need both)
  --rounds N            interleaved rounds per delay (default 3)
  --delays LIST         one-way delays in ms, comma list (default 0,5,25)
  --seq-mib N           sequential file size in MiB (default 256, the issue's figure)
  --files N             small files to create (default 2000, the issue's figure)
  --list-entries N      entries in the ls -lR tree (default 10000, the issue's figure)
  --quick               small sizes (32 MiB, 100 files, 1000 entries) unless given
  --tree PATH           source tree to copy (default: this workspace's libpuffs/src)
  --dir PATH            work directory (default /tmp/puffs-bench-sftp.PID)
";

pub fn parse(args: &[String]) -> Result<Config, String> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut c = Config {
        sftpfs: exe_dir.join("sftpfs"),
        relay: exe_dir.join("sftp-relay"),
        server: PathBuf::from("/usr/lib/openssh/sftp-server"),
        ssh: false,
        sftpfs_opts: None,
        sshfs_opts: None,
        rounds: 3,
        delays: vec![0, 5, 25],
        seq_mib: 0,
        files: 0,
        list_entries: 0,
        tree: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../libpuffs/src")),
        dir: PathBuf::from(format!("/tmp/puffs-bench-sftp.{}", std::process::id())),
        connections: None,
        fses: Fs::ALL.to_vec(),
        quick: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--sftpfs" => c.sftpfs = PathBuf::from(value()?),
            "--relay" => c.relay = PathBuf::from(value()?),
            "--server" => c.server = PathBuf::from(value()?),
            "--transport" => {
                c.ssh = match value()?.as_str() {
                    "local" => false,
                    "ssh" => true,
                    t => return Err(format!("--transport: expected local or ssh, got {t:?}")),
                }
            }
            "--sftpfs-opts" => c.sftpfs_opts = Some(value()?),
            "--sshfs-opts" => c.sshfs_opts = Some(value()?),
            "--rounds" => c.rounds = positive(flag, &value()?)?,
            "--seq-mib" => c.seq_mib = positive(flag, &value()?)?,
            "--files" => c.files = positive(flag, &value()?)?,
            "--list-entries" => c.list_entries = positive(flag, &value()?)?,
            "--tree" => c.tree = PathBuf::from(value()?),
            "--dir" => c.dir = PathBuf::from(value()?),
            "--delays" => c.delays = delays(&value()?)?,
            "--quick" => c.quick = true,
            "--connections" => c.connections = Some(positive(flag, &value()?)?),
            "--fs" => {
                c.fses = match value()?.as_str() {
                    "both" => Fs::ALL.to_vec(),
                    "sftpfs" => vec![Fs::Sftpfs],
                    "sshfs" => vec![Fs::Sshfs],
                    f => return Err(format!("--fs: expected both, sftpfs or sshfs, got {f:?}")),
                }
            }
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    // Sizes not given: the issue's, or the small ones with --quick.
    let (seq, files, entries) = if c.quick {
        (32, 100, 1000)
    } else {
        (256, 2000, 10_000)
    };
    for (v, d) in [
        (&mut c.seq_mib, seq),
        (&mut c.files, files),
        (&mut c.list_entries, entries),
    ] {
        if *v == 0 {
            *v = d;
        }
    }
    Ok(c)
}

fn positive(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: expected a positive number, got {v:?}")),
    }
}

fn delays(v: &str) -> Result<Vec<u64>, String> {
    let d: Vec<u64> = v
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("--delays: {x:?} is not a whole number of ms"))
        })
        .collect::<Result<_, _>>()?;
    if d.is_empty() {
        return Err("--delays: no delay given".into());
    }
    Ok(d)
}

/// Everything the run needs is there before anything is mounted.
pub fn preflight(c: &Config) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("must run as root (it mounts FUSE file systems and drops caches)".into());
    }
    let need = [
        (
            &c.sftpfs,
            "sftpfs (cargo build --release -p fs-examples --bin sftpfs, or --sftpfs PATH)",
        ),
        (
            &c.relay,
            "sftp-relay (cargo build --release -p puffs-bench, or --relay PATH)",
        ),
        (
            &c.server,
            "the sftp server (apt-get install openssh-sftp-server, or --server PATH)",
        ),
    ];
    for (path, what) in need {
        if !path.is_file() {
            return Err(format!("{} not found: {what}", path.display()));
        }
    }
    if !c.tree.is_dir() {
        return Err(format!("--tree {}: not a directory", c.tree.display()));
    }
    let sshfs = std::process::Command::new("sshfs")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !sshfs {
        return Err("sshfs not found (apt-get install sshfs)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_delays_and_sizes() {
        let c = parse(&args("--delays 0,5,25 --seq-mib=256 --files 2000")).unwrap();
        assert_eq!(c.delays, vec![0, 5, 25]);
        assert_eq!((c.seq_mib, c.files), (256, 2000));
    }

    #[test]
    fn full_sizes_by_default_small_with_quick() {
        let c = parse(&args("")).unwrap();
        assert_eq!((c.seq_mib, c.files, c.list_entries), (256, 2000, 10_000));
        let c = parse(&args("--quick --files 7 --connections 4 --fs sftpfs")).unwrap();
        assert_eq!((c.seq_mib, c.files, c.list_entries), (32, 7, 1000));
        assert_eq!(c.connections, Some(4));
        assert_eq!(c.fses, vec![Fs::Sftpfs]);
        assert!(parse(&args("--connections 0")).is_err());
        assert!(parse(&args("--fs nfs")).is_err());
    }

    #[test]
    fn refuses_bad_values() {
        assert!(parse(&args("--delays 5,x")).is_err());
        assert!(parse(&args("--rounds 0")).is_err());
        assert!(parse(&args("--bogus")).is_err());
    }
}
