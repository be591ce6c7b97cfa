//! The null layer's nodes: keyed by the backing file's (st_dev, st_ino), so all names
//! of a hard link are one node, and reached through a bounded cache of O_PATH fds.
//!
//! A node keeps no fd of its own when the backing file system gives file handles
//! (name_to_handle_at): an fd is opened again by handle (open_by_handle_at, which
//! needs CAP_DAC_READ_SEARCH) when the cache has let it go. Without handles (an
//! unprivileged server, a file system that has none) the node pins its fd: correct,
//! but then fds grow with the nodes the kernel knows.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;

use crate::attr::FileType;
use crate::passthrough::Backing;

/// What names a backing file: its device and inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackingKey {
    /// st_dev of the backing file.
    pub dev: u64,
    /// st_ino of the backing file.
    pub ino: u64,
}

/// A file handle of the backing file system (`struct file_handle`).
#[derive(Clone, Debug)]
pub struct Handle {
    typ: i32,
    bytes: Box<[u8]>,
}

/// The longest handle the kernel gives (MAX_HANDLE_SZ).
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the longest handle.
#[repr(C)]
struct RawHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_SZ],
}

impl Handle {
    /// The handle of the file `fd` is open on (an O_PATH fd will do).
    pub fn of(fd: &OwnedFd) -> io::Result<Handle> {
        let mut raw = RawHandle {
            handle_bytes: MAX_HANDLE_SZ as u32,
            handle_type: 0,
            f_handle: [0; MAX_HANDLE_SZ],
        };
        let mut mount_id = 0;
        // SAFETY: `raw` is a file_handle with handle_bytes of room after its header,
        // the path is a NUL-terminated empty string, and mount_id a valid int.
        let r = unsafe {
            libc::name_to_handle_at(
                fd.as_raw_fd(),
                c"".as_ptr(),
                (&raw mut raw).cast(),
                &mut mount_id,
                libc::AT_EMPTY_PATH,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = (raw.handle_bytes as usize).min(MAX_HANDLE_SZ);
        Ok(Handle {
            typ: raw.handle_type,
            bytes: raw.f_handle[..len].into(),
        })
    }

    /// Opens the file this handle names, with `flags`, on the file system `mount_fd`
    /// is on. ESTALE when the file is gone.
    pub fn open(&self, mount_fd: &OwnedFd, flags: i32) -> io::Result<OwnedFd> {
        let mut raw = RawHandle {
            handle_bytes: self.bytes.len() as u32,
            handle_type: self.typ,
            f_handle: [0; MAX_HANDLE_SZ],
        };
        raw.f_handle[..self.bytes.len()].copy_from_slice(&self.bytes);
        // SAFETY: `raw` is a valid file_handle of handle_bytes bytes; the call
        // returns a new fd we then own, or -1.
        let fd =
            unsafe { libc::open_by_handle_at(mount_fd.as_raw_fd(), (&raw mut raw).cast(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// One node's data (the `Ops::Node` of a null layer).
pub struct NullNode {
    /// The node's type, which never changes.
    pub kind: FileType,
    /// How to open it again when its fd has left the cache.
    handle: Option<Handle>,
    /// The fd it keeps for good: the root's, and every node's without a handle.
    pinned: Option<Arc<OwnedFd>>,
    /// Its kernel passthrough state (see `open.rs`).
    pub(crate) passthrough: RefCell<Passthrough>,
    /// Whether the last attributes seen had set-uid or set-gid: writes by others then
    /// clear them (the layer does, `Ops::KILLS_SUIDGID`), so they go through the fs.
    pub(crate) setid: Cell<bool>,
}

/// Open files of one node, for kernel passthrough: the kernel allows one backing file
/// per inode, and no mix of page-cached and passthrough opens.
#[derive(Default)]
pub(crate) struct Passthrough {
    /// The backing file every passthrough open of the node shares.
    pub backing: Option<Rc<Backing>>,
    /// Open files using `backing`.
    pub opens: u32,
    /// Open files served by the fs (through the page cache).
    pub cached: u32,
}

impl NullNode {
    /// A node remembered by `handle` when the file system gave one, else by its
    /// O_PATH `fd`, kept for good (None for neither: a stand-in the node table drops).
    pub fn new(kind: FileType, handle: Option<Handle>, fd: Option<&Arc<OwnedFd>>) -> NullNode {
        let pinned = match handle {
            Some(_) => None,
            None => fd.cloned(),
        };
        NullNode {
            kind,
            handle,
            pinned,
            passthrough: RefCell::default(),
            setid: Cell::new(false),
        }
    }

    /// The node's pinned fd, if it has one.
    pub fn pinned_fd(&self) -> Option<&Arc<OwnedFd>> {
        self.pinned.as_ref()
    }

    /// The node's file handle, if the backing file system gave one.
    pub fn handle(&self) -> Option<&Handle> {
        self.handle.as_ref()
    }
}

/// The O_PATH fds of recently used nodes, at most `cap` of them; the oldest goes first.
pub struct FdCache {
    fds: HashMap<BackingKey, Arc<OwnedFd>>,
    order: VecDeque<BackingKey>,
    cap: usize,
}

impl FdCache {
    /// An empty cache of at most `cap` fds.
    pub fn new(cap: usize) -> FdCache {
        FdCache {
            fds: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// The cached fd of `key`.
    pub fn get(&self, key: &BackingKey) -> Option<Arc<OwnedFd>> {
        self.fds.get(key).cloned()
    }

    /// Keeps `fd` for `key`, letting the oldest fds go past the cap.
    pub fn put(&mut self, key: BackingKey, fd: Arc<OwnedFd>) {
        if self.fds.insert(key, fd).is_none() {
            self.order.push_back(key);
        }
        while self.fds.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.fds.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Forgets `key`'s fd (its node is gone). Its place in the order goes later:
    /// dropped when it comes up, or when stale places outnumber the live ones.
    pub fn remove(&mut self, key: &BackingKey) {
        self.fds.remove(key);
        if self.order.len() > 2 * self.cap.max(self.fds.len()) {
            let fds = &self.fds;
            self.order.retain(|k| fds.contains_key(k));
        }
    }

    /// How many fds it holds.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }
}
