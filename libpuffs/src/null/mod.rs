//! The null layer (puffs' null layer): a file system that passes every op through to
//! a backing directory, usable whole (nullfs) or as the base of a layered file system
//! that changes names and data through a [`Transform`] (rot13fs).
//!
//! Rules it keeps (docs/architecture.md, "The null layer"):
//! - every access is relative to a directory fd, one name at a time, never following
//!   a symlink (`ops.rs`): nothing leaves the backing directory, a symlink pointing
//!   outside is handed back as a symlink, and trees deeper than PATH_MAX work;
//! - nodes are keyed by the backing (st_dev, st_ino): the names of a hard link are
//!   one node, and inode numbers are the backing ones, stable across rename;
//! - new nodes belong to the caller (uid, gid, set-gid directories), not the server;
//! - fds are bounded: a cache of O_PATH fds for recently used nodes, reopened by file
//!   handle (`node.rs`), plus one fd per open file, kept in its [`NullFile`] (the
//!   framework holds it per kernel file handle and drops it after release);
//! - file data goes through `Cx::aio`, metadata through `Aio::blocking` (off the
//!   loop thread) unless it cannot wait for a disk (fstat of a held fd, a lookup the
//!   kernel's name cache answers) or `NullConfig::inline_meta` asks for the loop;
//!   and, where the kernel offers it, kernel passthrough (`open.rs`).
//!
//! Layout: `node.rs` (keys, handles, the fd cache), `ops.rs` (the system calls as
//! plain functions), `open.rs` (open files and passthrough), `glue.rs` (the `Ops` impl
//! that unpacks each request and calls the rest). The backing directory itself is
//! watched through `crate::dirwatch`.

mod glue;
pub mod node;
mod open;
pub mod ops;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use node::FdCache;
pub use node::{BackingKey, NullNode};
pub use open::{NullDir, NullFile};

/// How a layered file system changes names and data on their way to and from the
/// backing directory. Every method defaults to passing things through unchanged, so a
/// layer overrides only what it changes. Names must map one to one (a bijection);
/// data must keep its length and may depend on the byte's offset.
pub trait Transform: 'static {
    /// Whether `data_to_backing` / `data_from_backing` change bytes. A layer that
    /// does gets no kernel passthrough (the kernel would bypass it).
    const CHANGES_DATA: bool = false;

    /// A name the caller gave, as it is stored in the backing directory.
    fn name_to_backing(&self, name: &OsStr) -> OsString {
        name.to_owned()
    }
    /// A name in the backing directory, as the caller sees it.
    fn name_from_backing(&self, name: &OsStr) -> OsString {
        name.to_owned()
    }
    /// Bytes written at `offset`, changed in place before they reach the backing file.
    fn data_to_backing(&self, _offset: u64, _data: &mut [u8]) {}
    /// Bytes read at `offset` from the backing file, changed in place for the caller.
    fn data_from_backing(&self, _offset: u64, _data: &mut [u8]) {}
}

/// The transform that changes nothing: the plain null layer (nullfs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Transform for Identity {}

/// The null layer's settings.
#[derive(Clone, Debug)]
pub struct NullConfig {
    /// Hand open files to the kernel (FUSE passthrough) where it allows it; also needs
    /// `PuffsUserMount::passthrough`. Ignored when the transform changes data.
    pub passthrough: bool,
    /// How many O_PATH fds of nodes to keep open (besides the root and open files).
    pub fd_cache: usize,
    /// Let the kernel keep a file's cached pages across opens (FOPEN_KEEP_CACHE):
    /// right when nothing changes the backing files behind the mount's back.
    pub keep_cache: bool,
    /// The mount uses the kernel's writeback cache: files are opened for reading too
    /// (the kernel reads to fill partial pages) and O_APPEND is left to the kernel.
    pub writeback: bool,
    /// Remember nodes by file handle (needs CAP_DAC_READ_SEARCH); off: every node the
    /// kernel knows keeps an fd.
    pub handles: bool,
    /// Export support (`-o export`, `Ops::lookup_ino`): remember the file handle of
    /// every file the kernel has seen, by inode number, so the kernel's own file
    /// handles (NFS, open_by_handle_at) outlive its cache. Costs memory per file seen.
    pub export: bool,
    /// Answer getattr with an fstat on the loop thread (an open fd pins the inode in
    /// memory, so on a local file system this never waits for a disk), and lookups of
    /// names the kernel has in its name cache (openat2 RESOLVE_CACHED, which fails
    /// rather than wait): each saves two thread hops. Turn it off over a network file
    /// system, whose fstat may ask a server.
    pub inline_stat: bool,
    /// Run every metadata call (create, mkdir, unlink, rename, lookups that miss the
    /// name cache, xattrs, ...) on the loop thread instead of the worker pool: saves
    /// two thread hops per call, but a call that waits for a disk stalls every other
    /// request meanwhile. For a backing directory on a fast local disk.
    pub inline_meta: bool,
}

impl Default for NullConfig {
    fn default() -> Self {
        NullConfig {
            passthrough: true,
            fd_cache: 4096,
            keep_cache: false,
            writeback: false,
            handles: nix::unistd::geteuid().is_root(),
            export: false,
            inline_stat: true,
            inline_meta: false,
        }
    }
}

/// A null layer over a backing directory, with the transform `T` (see the module).
pub struct NullLayer<T: Transform = Identity> {
    root: Arc<OwnedFd>,
    /// The backing directory's path as given, for log lines.
    backing: std::path::PathBuf,
    transform: T,
    config: NullConfig,
    /// O_PATH fds of recently used nodes.
    fds: RefCell<FdCache>,
    /// The backing directory open for reading: the `mount_fd` of open_by_handle_at
    /// (which takes no O_PATH fd), and its file system's st_dev. Nodes on other file
    /// systems (mounted inside the backing directory) pin their fds instead.
    mount: (u64, Arc<OwnedFd>),
    /// Whether opens still try kernel passthrough (off once the kernel refused).
    passthrough: Cell<bool>,
    /// Whether lookups still try the name cache on the loop thread (off when the
    /// kernel has no RESOLVE_CACHED).
    cached_lookups: Cell<bool>,
    /// With export: every file seen, by backing inode number (its usual node number).
    exported: RefCell<HashMap<u64, (BackingKey, node::Handle)>>,
}

impl<T: Transform> NullLayer<T> {
    /// A null layer over the directory `backing`. The process's umask is cleared: the
    /// kernel has applied the caller's already, and the server's must not apply twice.
    pub fn new(backing: &Path, transform: T, config: NullConfig) -> io::Result<Self> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let root = nix::fcntl::open(backing, flags, Mode::empty())
            .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        nix::sys::stat::umask(Mode::empty());
        let root = Arc::new(root);
        let dev = ops::stat(&root)?.st_dev;
        let dir = ops::open(&root, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let passthrough = config.passthrough && !T::CHANGES_DATA;
        Ok(NullLayer {
            mount: (dev, Arc::new(dir)),
            root,
            backing: backing.to_path_buf(),
            transform,
            fds: RefCell::new(FdCache::new(config.fd_cache)),
            passthrough: Cell::new(passthrough),
            cached_lookups: Cell::new(config.inline_stat),
            exported: RefCell::default(),
            config,
        })
    }

    /// The transform.
    pub fn transform(&self) -> &T {
        &self.transform
    }

    /// How many node fds the cache holds now (for tests and measurements).
    pub fn cached_fds(&self) -> usize {
        self.fds.borrow().len()
    }

    /// A name from the caller as one backing path component.
    fn backing_name(&self, name: &OsStr) -> io::Result<std::ffi::CString> {
        ops::component(&self.transform.name_to_backing(name))
    }

    /// A symlink target from the caller, each component's name transformed.
    fn target_to_backing(&self, target: &OsStr) -> OsString {
        map_components(target, |c| self.transform.name_to_backing(c))
    }

    /// A backing symlink target as the caller sees it.
    fn target_from_backing(&self, target: &OsStr) -> OsString {
        map_components(target, |c| self.transform.name_from_backing(c))
    }
}

/// `path` with every component but "", "." and ".." replaced by `f`'s answer.
fn map_components(path: &OsStr, f: impl Fn(&OsStr) -> OsString) -> OsString {
    let parts: Vec<Vec<u8>> = path
        .as_bytes()
        .split(|b| *b == b'/')
        .map(|c| match c {
            b"" | b"." | b".." => c.to_vec(),
            c => f(OsStr::from_bytes(c)).into_vec(),
        })
        .collect();
    OsString::from_vec(parts.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_each_component_and_keep_dots_and_slashes() {
        let up = |c: &OsStr| OsString::from(c.to_string_lossy().to_uppercase());
        let m = |p: &str| map_components(OsStr::new(p), up);
        assert_eq!(m("a/../b/./c"), "A/../B/./C");
        assert_eq!(m("/abs//x/"), "/ABS//X/");
        assert_eq!(m(""), "");
    }
}
