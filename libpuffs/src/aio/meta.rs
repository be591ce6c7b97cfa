//! Metadata system calls io_uring can carry ([`MetaCall`], `Aio::meta`): lookups
//! and opens (openat2), unlinkat, renameat2 and getxattr. Through io_uring they cost no hop to a worker
//! thread of ours: an openat2 the kernel's name cache answers completes inside the
//! submit call, and one that must wait goes to the kernel's own io-wq worker, which
//! wakes much faster than a user thread (docs/performance.md, nullfs "metadata").
//! Other backends, and a ring without the opcode, run the same call on the worker
//! pool.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// One metadata call; it owns its fds and names until it has completed.
// The fields are the system call's arguments, named as in its manual page.
#[allow(missing_docs)]
pub enum MetaCall {
    /// openat2(`dir`, `name`, {`flags`, mode 0, `resolve`}): a new fd.
    Open {
        dir: Arc<OwnedFd>,
        name: CString,
        flags: i32,
        resolve: u64,
    },
    /// unlinkat(`dir`, `name`, `flags`) (AT_REMOVEDIR: rmdir).
    Unlink {
        dir: Arc<OwnedFd>,
        name: CString,
        flags: i32,
    },
    /// renameat2(`dir`, `name`, `newdir`, `newname`, `flags`).
    Rename {
        dir: Arc<OwnedFd>,
        name: CString,
        newdir: Arc<OwnedFd>,
        newname: CString,
        flags: u32,
    },
    /// getxattr(`path`, `name`) into the buffer given with the call
    /// (`Aio::meta_into`); `fd` keeps open the fd `path` names (/proc/self/fd/N).
    GetXattr {
        fd: Arc<OwnedFd>,
        path: CString,
        name: CString,
    },
}

impl MetaCall {
    /// Makes the call on this thread (the pool's way); the fd, 0, or for getxattr
    /// the value's length (its bytes in `buf`).
    pub fn run_blocking_into(&self, buf: &mut [u8]) -> io::Result<i32> {
        // SAFETY: each call gets valid fds and NUL-terminated names it only reads,
        // an open_how of the size passed, and a buffer of buf.len() writable bytes.
        let r = unsafe {
            match self {
                MetaCall::Open {
                    dir,
                    name,
                    flags,
                    resolve,
                } => {
                    let mut how: libc::open_how = std::mem::zeroed();
                    how.flags = *flags as u64;
                    how.resolve = *resolve;
                    libc::syscall(
                        libc::SYS_openat2,
                        dir.as_raw_fd(),
                        name.as_ptr(),
                        &raw const how,
                        std::mem::size_of::<libc::open_how>(),
                    ) as i32
                }
                MetaCall::Unlink { dir, name, flags } => {
                    libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), *flags)
                }
                MetaCall::Rename {
                    dir,
                    name,
                    newdir,
                    newname,
                    flags,
                } => libc::renameat2(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    newdir.as_raw_fd(),
                    newname.as_ptr(),
                    *flags,
                ),
                MetaCall::GetXattr { path, name, .. } => libc::getxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                ) as i32,
            }
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r)
    }

    /// Makes the call on this thread (the pool's way); the fd or 0.
    pub fn run_blocking(&self) -> io::Result<i32> {
        self.run_blocking_into(&mut [])
    }

    /// The fd the call works relative to (kept open while it is in flight).
    pub(crate) fn fd(&self) -> &Arc<OwnedFd> {
        match self {
            MetaCall::Open { dir, .. }
            | MetaCall::Unlink { dir, .. }
            | MetaCall::Rename { dir, .. } => dir,
            MetaCall::GetXattr { fd, .. } => fd,
        }
    }

    /// Whether a successful result is a new fd that must be closed if nobody takes it.
    pub(crate) fn makes_fd(&self) -> bool {
        matches!(self, MetaCall::Open { .. })
    }
}
