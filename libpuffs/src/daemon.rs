//! Daemonizing before mount (puffs_daemon): fork while the process has one thread; the
//! parent waits on a pipe for the child's mount result and exits with it, so whoever
//! started the file system learns whether the mount is up. The child detaches.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::unistd::{fork, ForkResult};

use crate::error::Error;

/// Sent through the pipe: one status byte, then the error message on failure.
const MOUNTED: u8 = b'0';
const FAILED: u8 = b'1';

/// The child's end of the pipe to its waiting parent.
pub(crate) struct Daemon {
    pipe: std::fs::File,
    detach_stdio: bool,
    /// Where stdout and stderr go once detached (`-o logfile=`); /dev/null without it.
    log: Option<std::fs::File>,
}

/// Opens a log file for appending (created mode 0640), before the fork, so that a bad
/// path is reported to whoever started the file system.
pub(crate) fn open_logfile(path: &std::path::Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| Error::Daemon(format!("cannot open log file {}: {e}", path.display())))
}

impl Daemon {
    /// Forks. Returns in the child only; the parent waits and exits.
    pub(crate) fn fork(detach_stdio: bool, log: Option<std::fs::File>) -> Result<Daemon, Error> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // SAFETY: daemon() is documented to run before any other thread exists, so
        // the child inherits no lock held by another thread; both sides go on with
        // ordinary code.
        match unsafe { fork() }? {
            ForkResult::Parent { child } => {
                drop(write);
                parent_wait(read, child)
            }
            ForkResult::Child => {
                drop(read);
                nix::unistd::setsid()?;
                Ok(Daemon {
                    pipe: std::fs::File::from(write),
                    detach_stdio,
                    log,
                })
            }
        }
    }

    /// The mount is up: detach from the terminal and let the parent exit 0.
    pub(crate) fn report_success(mut self) {
        if self.detach_stdio {
            detach_stdio(self.log.as_ref());
        }
        // The cwd would keep whatever file system it is on busy.
        let _ = std::env::set_current_dir("/");
        let _ = self.pipe.write_all(&[MOUNTED]);
    }

    /// The mount failed: the parent prints `msg` and exits 1. The child says nothing
    /// more (it is about to exit), so the message appears once.
    pub(crate) fn report_failure(mut self, msg: &str) {
        let mut out = vec![FAILED];
        out.extend_from_slice(msg.as_bytes());
        let _ = self.pipe.write_all(&out);
        if self.detach_stdio {
            detach_stdio(self.log.as_ref());
        }
    }
}

/// Waits for the child's report and exits with it.
fn parent_wait(read: OwnedFd, child: nix::unistd::Pid) -> ! {
    let mut msg = Vec::new();
    let _ = std::fs::File::from(read).read_to_end(&mut msg);
    let argv0 = std::env::args().next().unwrap_or_default();
    let prog = std::path::Path::new(&argv0)
        .file_name()
        .map_or(argv0.clone(), |n| n.to_string_lossy().into_owned());
    match msg.split_first() {
        Some((&MOUNTED, _)) => std::process::exit(0),
        Some((&FAILED, text)) => {
            eprintln!("{prog}: {}", String::from_utf8_lossy(text));
            // Reap it so no zombie outlives us while it finishes exiting.
            let _ = nix::sys::wait::waitpid(child, None);
            std::process::exit(1)
        }
        _ => {
            let status = nix::sys::wait::waitpid(child, None);
            eprintln!("{prog}: the file system process ended before the mount was up ({status:?})");
            std::process::exit(1)
        }
    }
}

/// Points stdin, stdout and stderr at /dev/null (stdout and stderr at `log` when
/// given), so nothing waiting on our output (a shell pipe, a test harness) waits for the
/// daemon's lifetime.
fn detach_stdio(log: Option<&std::fs::File>) {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let out = log.unwrap_or(&null);
    for (from, fd) in [
        (&null, libc::STDIN_FILENO),
        (out, libc::STDOUT_FILENO),
        (out, libc::STDERR_FILENO),
    ] {
        // dup2 onto the standard fds; nix wants an owned target, so use libc directly.
        // SAFETY: both fds are valid for the duration of the call; dup2 replaces the
        // standard fd atomically and we never use the old one again.
        unsafe {
            libc::dup2(from.as_raw_fd(), fd);
        }
    }
}
