//! The ssh route: a private sshd on a free 127.0.0.1 port with keys made for the run (no system
//! configuration touched), and the ssh command line that reaches its sftp subsystem.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Child,
    pub port: u16,
    key: PathBuf,
}

impl Sshd {
    /// Starts sshd with its files in `dir`, its sftp subsystem `server`.
    pub fn start(dir: &Path, server: &Path) -> Result<Sshd, String> {
        fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        for key in ["host_key", "user_key"] {
            let _ = fs::remove_file(dir.join(key));
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .output()
                .map_err(|e| format!("ssh-keygen: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ssh-keygen: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys"))
            .map_err(|e| format!("authorized_keys: {e}"))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let config = format!(
            "HostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nSubsystem sftp {s}\n",
            d = dir.display(),
            s = server.display()
        );
        fs::write(dir.join("sshd_config"), config).map_err(|e| format!("sshd_config: {e}"))?;
        // sshd wants its privilege separation directory (a runtime dir, not config).
        let _ = fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .args(["-p", &port.to_string(), "-o", "ListenAddress=127.0.0.1"])
            .spawn()
            .map_err(|e| format!("/usr/sbin/sshd: {e}"))?;
        let mut sshd = Sshd {
            child,
            port,
            key: dir.join("user_key"),
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(5)
                || sshd.child.try_wait().ok().flatten().is_some()
            {
                return Err("sshd did not start listening within 5 s".into());
            }
            sleep(Duration::from_millis(20));
        }
        Ok(sshd)
    }

    /// `ssh ... -s -- root@127.0.0.1 sftp`, the same for both file systems.
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["ssh".into(), "-p".into(), self.port.to_string()];
        for o in [
            format!("IdentityFile={}", self.key.display()),
            "StrictHostKeyChecking=no".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "BatchMode=yes".into(),
            "LogLevel=ERROR".into(),
        ] {
            a.extend(["-o".into(), o]);
        }
        a.extend(["-x", "-a", "-s", "--", "root@127.0.0.1", "sftp"].map(String::from));
        a
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
