//! sftpfs's source argument and mount options: where the server is, how to start it,
//! deadlines and cache lifetimes. Everything that reaches the ssh command line is
//! checked here, so a host or option cannot be taken by ssh for an option of its own.

use std::time::Duration;

use puffs::options::{FsOption, MountOptions};

pub const OPTIONS: &[FsOption] = &[
    FsOption::value(
        "ssh_command",
        "the command that reaches the server's SFTP subsystem (split at spaces; default: ssh)",
    ),
    FsOption::value(
        "sftp_server",
        "run this SFTP server program directly instead of ssh (local use, tests)",
    ),
    FsOption::value("port", "ssh port"),
    FsOption::value(
        "ssh_option",
        "an ssh -o option (Name=value), may be repeated",
    ),
    FsOption::value(
        "timeout",
        "seconds each request may take before it fails with ETIMEDOUT (default 30)",
    ),
    FsOption::value(
        "cache_timeout",
        "seconds attributes, names and symlink targets are cached (default 20)",
    ),
    FsOption::value(
        "connections",
        "SFTP sessions to open (default 1); with 2 or more, one carries metadata and the \
         others a file's data, striped over them",
    ),
    FsOption::flag(
        "reconnect",
        "start a new session when the server goes away, reopening open files",
    ),
];

/// How the server is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// `ssh [-p port] [-o opt]... -x -a -s -- [user@]host sftp`.
    Ssh {
        destination: String,
        port: Option<u16>,
        options: Vec<String>,
    },
    /// Any command line, its stdin and stdout the SFTP stream.
    Command(Vec<String>),
}

impl Launch {
    /// The argv that starts the server.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Launch::Command(argv) => argv.clone(),
            Launch::Ssh {
                destination,
                port,
                options,
            } => {
                let mut argv = vec!["ssh".to_string()];
                if let Some(p) = port {
                    argv.extend(["-p".into(), p.to_string()]);
                }
                for o in options {
                    argv.extend(["-o".into(), o.clone()]);
                }
                // No X11 or agent forwarding into a file system session; `-s` names a
                // subsystem, and `--` ends ssh's options before the host.
                argv.extend(["-x", "-a", "-s", "--"].map(String::from));
                argv.extend([destination.clone(), "sftp".into()]);
                argv
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub launch: Launch,
    /// The remote directory to mount ("" for the login directory).
    pub dir: String,
    pub timeout: Duration,
    pub cache_timeout: Duration,
    pub reconnect: bool,
    /// How many sessions (`-o connections=`).
    pub connections: usize,
}

fn bad(name: &str, value: &str, why: &str) -> String {
    format!("bad value '{value}' for mount option '{name}': {why}")
}

/// A name ssh would read as an option, or one that holds what no host or user name
/// does, is refused.
fn check_word(what: &str, w: &str) -> Result<(), String> {
    if w.is_empty() {
        return Err(format!("empty {what}"));
    }
    if w.starts_with('-') {
        return Err(format!(
            "{what} '{w}' starts with '-' (ssh would take it for an option)"
        ));
    }
    if w.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} '{w}' holds a space or control character"));
    }
    Ok(())
}

/// Splits `[user@]host:[dir]` (a host may be `[v6 address]`) into destination and dir.
pub fn split_source(source: &str) -> Result<(String, String), String> {
    let colon = if source.starts_with('[') || source.contains("@[") {
        let close = source.find(']').ok_or("unclosed '[' in the host")?;
        source[close..].find(':').map(|i| close + i)
    } else {
        source.find(':')
    };
    let Some(colon) = colon else {
        return Err(format!("'{source}' is not [user@]host:[dir]"));
    };
    let (dest, dir) = (&source[..colon], &source[colon + 1..]);
    let host = dest.rsplit_once('@').map_or(dest, |(user, host)| {
        let _ = user;
        host
    });
    if let Some((user, _)) = dest.rsplit_once('@') {
        check_word("user", user)?;
    }
    check_word("host", host.trim_start_matches('[').trim_end_matches(']'))?;
    check_word("host", host)?;
    Ok((dest.to_string(), dir.to_string()))
}

fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = v.parse().map_err(|_| bad(name, v, "expected seconds"))?;
    if !(0.0..=86400.0).contains(&s) {
        return Err(bad(name, v, "expected 0 to 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

impl Config {
    /// The configuration for `source` and the mount options.
    pub fn from_args(source: Option<&str>, o: &MountOptions) -> Result<Config, String> {
        let mut port = None;
        let mut ssh_options = Vec::new();
        let mut command: Option<Vec<String>> = None;
        let mut c = Config {
            launch: Launch::Command(Vec::new()),
            dir: String::new(),
            timeout: Duration::from_secs(30),
            cache_timeout: Duration::from_secs(20),
            reconnect: false,
            connections: 1,
        };
        for (name, value) in &o.fs {
            let v = value.as_deref().unwrap_or("");
            match name.as_str() {
                "ssh_command" => {
                    let argv: Vec<String> = v.split_whitespace().map(String::from).collect();
                    if argv.is_empty() {
                        return Err(bad(name, v, "empty command"));
                    }
                    command = Some(argv);
                }
                "sftp_server" => {
                    if v.is_empty() {
                        return Err(bad(name, v, "empty path"));
                    }
                    command = Some(vec![v.to_string()]);
                }
                "port" => {
                    port = Some(
                        v.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| bad(name, v, "expected a port number"))?,
                    )
                }
                "ssh_option" => {
                    check_word("ssh option", v)?;
                    if !v.contains('=') {
                        return Err(bad(name, v, "expected Name=value"));
                    }
                    ssh_options.push(v.to_string());
                }
                "timeout" => {
                    c.timeout = seconds(name, v)?;
                    if c.timeout.is_zero() {
                        return Err(bad(name, v, "a request needs some time"));
                    }
                }
                "cache_timeout" => c.cache_timeout = seconds(name, v)?,
                "reconnect" => c.reconnect = true,
                "connections" => {
                    let max = crate::sessions::MAX_CONNECTIONS;
                    c.connections = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=max).contains(n))
                        .ok_or_else(|| bad(name, v, &format!("expected 1 to {max}")))?;
                }
                _ => {}
            }
        }
        let source = source.unwrap_or("");
        c.launch = match command {
            // A local server: the source is `[anything:]dir`, the host part unused.
            Some(argv) => {
                c.dir = source
                    .split_once(':')
                    .map_or(source, |(_, d)| d)
                    .to_string();
                Launch::Command(argv)
            }
            None => {
                let (destination, dir) = split_source(source)?;
                c.dir = dir;
                Launch::Ssh {
                    destination,
                    port,
                    options: ssh_options,
                }
            }
        };
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(source: &str, opts: &str) -> Result<Config, String> {
        let o = MountOptions::parse(opts, OPTIONS).map_err(|e| e.to_string())?;
        Config::from_args(Some(source), &o)
    }

    #[test]
    fn ssh_argv_puts_the_host_after_the_end_of_options() {
        let c = cfg(
            "me@example.org:/srv",
            "port=2222,ssh_option=Compression=yes",
        )
        .unwrap();
        assert_eq!(c.dir, "/srv");
        assert_eq!(
            c.launch.argv(),
            [
                "ssh",
                "-p",
                "2222",
                "-o",
                "Compression=yes",
                "-x",
                "-a",
                "-s",
                "--",
                "me@example.org",
                "sftp"
            ]
        );
    }

    #[test]
    fn hosts_and_options_ssh_would_parse_as_options_are_refused() {
        for bad in [
            "-oProxyCommand=x:/",
            "me@-oProxyCommand=x:/",
            "-l@host:/",
            "host",
            ":/dir",
            "a b:/",
        ] {
            assert!(cfg(bad, "").is_err(), "{bad} was accepted");
        }
        assert!(cfg("h:/", "ssh_option=-F/x").is_err());
        assert!(cfg("h:/", "ssh_option=NoEquals").is_err());
        assert!(cfg("h:/", "port=0").is_err());
        assert!(cfg("h:/", "timeout=0").is_err());
        for n in ["0", "17", "x", ""] {
            assert!(cfg("h:/", &format!("connections={n}")).is_err(), "{n}");
        }
        assert_eq!(cfg("h:/", "connections=4").unwrap().connections, 4);
        assert_eq!(cfg("h:/", "").unwrap().connections, 1);
    }

    #[test]
    fn login_dir_and_v6_hosts() {
        assert_eq!(cfg("host:", "").unwrap().dir, "");
        let c = cfg("me@[::1]:dir", "").unwrap();
        assert_eq!(c.dir, "dir");
        assert!(
            matches!(c.launch, Launch::Ssh { ref destination, .. } if destination == "me@[::1]")
        );
    }

    #[test]
    fn a_local_server_takes_the_directory_from_the_source() {
        let c = cfg("local:/tmp/x", "sftp_server=/usr/lib/openssh/sftp-server").unwrap();
        assert_eq!(c.dir, "/tmp/x");
        assert_eq!(c.launch.argv(), ["/usr/lib/openssh/sftp-server"]);
        let c = cfg("/srv", "ssh_command=ssh -p 22 h -s sftp,timeout=2.5").unwrap();
        assert_eq!(c.dir, "/srv");
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.launch.argv().len(), 6);
    }
}
