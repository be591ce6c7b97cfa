//! Mounting sftpfs and sshfs on the same local sftp-server, both through the delay relay.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::targets::{find_daemon, process_alive, unmount_path, wait_mounted};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fs {
    Sftpfs,
    Sshfs,
}

impl Fs {
    pub const ALL: [Fs; 2] = [Fs::Sftpfs, Fs::Sshfs];

    pub fn name(self) -> &'static str {
        match self {
            Fs::Sftpfs => "sftpfs",
            Fs::Sshfs => "sshfs",
        }
    }
}

impl fmt::Display for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What both mounts share: the relay, the server and the exported directory.
pub struct Transport {
    pub relay: PathBuf,
    /// The command behind the relay: the sftp-server itself, or ssh to a local sshd.
    pub server_argv: Vec<String>,
    /// Over ssh: the sshd's port, and the relay goes inside ssh (its ProxyCommand, relaying
    /// the TCP connection), so the delay is under ssh's channel window as a network's is.
    pub sshd_port: Option<u16>,
    pub sftpfs: PathBuf,
    pub sftpfs_opts: Option<String>,
    pub sshfs_opts: Option<String>,
    /// The directory both export.
    pub remote: PathBuf,
    /// Where the wrapper scripts and mount points go.
    pub base: PathBuf,
}

impl Transport {
    /// A shell script that ignores its arguments (sshfs adds ssh's) and starts the relay in front
    /// of the server: the one command line both file systems run.
    fn wrapper(&self, delay_ms: u64) -> Result<PathBuf, String> {
        let path = self.base.join(format!("server-{delay_ms}ms.sh"));
        let server: Vec<String> = self.server_argv.iter().map(|a| quote(a)).collect();
        let relay = quote(&self.relay.to_string_lossy());
        let script = match self.sshd_port {
            Some(port) => {
                let proxy = format!(
                    "ProxyCommand={} {delay_ms} --tcp 127.0.0.1:{port}",
                    self.relay.display()
                );
                format!(
                    "#!/bin/sh\nexec {} -o {} {}\n",
                    server[0],
                    quote(&proxy),
                    server[1..].join(" ")
                )
            }
            None => format!("#!/bin/sh\nexec {relay} {delay_ms} {}\n", server.join(" ")),
        };
        fs::write(&path, script).map_err(|e| format!("write {}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        Ok(path)
    }

    pub fn mount(&self, fs: Fs, delay_ms: u64) -> Result<Mounted, String> {
        let wrapper = self.wrapper(delay_ms)?;
        let mp = self.base.join(format!("mnt-{fs}"));
        fs::create_dir_all(&mp).map_err(|e| format!("mkdir {}: {e}", mp.display()))?;
        let ssh_command = format!("ssh_command={}", wrapper.display());
        let mut cmd = match fs {
            Fs::Sftpfs => {
                let mut c = Command::new(&self.sftpfs);
                c.arg("-o").arg(join_opts(&ssh_command, &self.sftpfs_opts));
                c.arg(format!("local:{}", self.remote.display()));
                c
            }
            Fs::Sshfs => {
                let mut c = Command::new("sshfs");
                c.arg("-o").arg(join_opts(&ssh_command, &self.sshfs_opts));
                c.arg(format!("localhost:{}", self.remote.display()));
                c
            }
        };
        cmd.arg(&mp);
        let out = cmd.output().map_err(|e| format!("{fs}: cannot run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{fs} failed to mount: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        wait_mounted(&mp, &format!("fuse.{fs}"))?;
        let mp_s = mp.to_string_lossy().into_owned();
        let pid = find_daemon(|argv| argv.contains(&mp_s));
        Ok(Mounted { fs, mp, pid })
    }
}

/// `s` as one single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn join_opts(first: &str, extra: &Option<String>) -> String {
    match extra {
        Some(x) if !x.is_empty() => format!("{first},{x}"),
        _ => first.to_string(),
    }
}

/// A mounted file system; unmounted (and its daemon waited for) when dropped.
pub struct Mounted {
    pub fs: Fs,
    mp: PathBuf,
    pid: Option<i32>,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.mp
    }

    pub fn unmount(mut self) -> Result<(), String> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), String> {
        unmount_path(&self.mp)?;
        // The daemon (and with it the relay and server) must be gone before the next run.
        if let Some(pid) = self.pid.take() {
            let start = Instant::now();
            while process_alive(pid) {
                if start.elapsed() > Duration::from_secs(10) {
                    return Err(format!(
                        "{}: daemon {pid} still running 10 s after unmount",
                        self.fs
                    ));
                }
                sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("puffs-bench: unmount {}: {e}", self.fs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
