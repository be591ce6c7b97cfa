//! The inode: attributes in `Cell`s, contents and extended attributes behind one
//! `RefCell`. Kept small, since an empty file is mostly its inode: 104 bytes here,
//! 120 with its `Rc` counts.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::ffi::OsString;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use puffs::{Attr, Errno, FileType};

use crate::data::{Data, BLOCKS_PER_PAGE};
use crate::dir::Dir;
use crate::xattr::Xattrs;

// mode_t is u16 on the BSDs, hence the casts.
#[allow(clippy::unnecessary_cast)]
pub const S_IFMT: u32 = libc::S_IFMT as u32;
#[allow(clippy::unnecessary_cast)]
pub const S_IFREG: u32 = libc::S_IFREG as u32;
#[allow(clippy::unnecessary_cast)]
pub const S_IFDIR: u32 = libc::S_IFDIR as u32;
#[allow(clippy::unnecessary_cast)]
pub const S_IFLNK: u32 = libc::S_IFLNK as u32;
#[allow(clippy::unnecessary_cast)]
pub const S_IFCHR: u32 = libc::S_IFCHR as u32;

/// The longest name a directory entry may have.
pub const NAME_MAX: usize = 255;
/// What each entry adds to a directory's `st_size` (tmpfs's BOGO_DIRENT_SIZE); an
/// empty directory has two ("." and "..").
pub const DIRENT_SIZE: u64 = 20;
/// Symlink targets at least this long take a data page, as in tmpfs (whose inline
/// limit of 128 bytes counts the terminating NUL).
pub const LONG_SYMLINK: usize = 128;
/// A day: relatime updates an access time at least this old.
const RELATIME_SLACK: Duration = Duration::from_secs(24 * 3600);

pub enum Content {
    /// None until the file has a page.
    File(Option<Box<Data>>),
    Dir(Box<Dir>),
    Symlink(Box<OsString>),
    /// Device numbers of a character or block device; 0 for fifos and sockets.
    Special(u32),
}

pub struct Body {
    pub content: Content,
    pub xattrs: Option<Box<Xattrs>>,
}

/// A bit of `mode` outside the type and permission bits: the inode's resources have
/// been given back (see `MemFs::free`).
const FREED: u32 = 1 << 31;

/// Indices into the time arrays.
const ATIME: usize = 0;
const MTIME: usize = 1;
const CTIME: usize = 2;

pub struct Inode {
    /// The node key: unique for the life of the mount.
    pub id: u64,
    /// Bytes, for regular files and symlinks (directories compute theirs).
    size: Cell<u64>,
    /// atime, mtime, ctime: seconds since the epoch and nanoseconds.
    secs: [Cell<i64>; 3],
    nsecs: [Cell<u32>; 3],
    /// Type and permission bits.
    mode: Cell<u32>,
    nlink: Cell<u32>,
    /// Open files (and directories) of this inode.
    opens: Cell<u32>,
    uid: Cell<u32>,
    gid: Cell<u32>,
    body: RefCell<Body>,
}

/// `t` as seconds and nanoseconds since the epoch (negative seconds before it).
pub fn split_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

pub fn join_time(secs: i64, nsecs: u32) -> SystemTime {
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nsecs))))
        .unwrap_or(UNIX_EPOCH)
}

impl Inode {
    /// A new inode with one link (two for a directory), all times `now`.
    pub fn new(id: u64, mode: u32, uid: u32, gid: u32, content: Content, now: SystemTime) -> Inode {
        let (s, n) = split_time(now);
        let is_dir = matches!(content, Content::Dir(_));
        let size = match &content {
            Content::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        Inode {
            id,
            size: Cell::new(size),
            secs: [Cell::new(s), Cell::new(s), Cell::new(s)],
            nsecs: [Cell::new(n), Cell::new(n), Cell::new(n)],
            mode: Cell::new(mode),
            nlink: Cell::new(if is_dir { 2 } else { 1 }),
            opens: Cell::new(0),
            uid: Cell::new(uid),
            gid: Cell::new(gid),
            body: RefCell::new(Body {
                content,
                xattrs: None,
            }),
        }
    }

    /// Permission bits (`mode & 07777`).
    pub fn perm(&self) -> u32 {
        self.mode.get() & 0o7777
    }
    pub fn set_perm(&self, perm: u32) {
        self.mode.set((self.mode.get() & !0o7777) | (perm & 0o7777));
    }
    pub fn kind(&self) -> FileType {
        FileType::from_mode(self.mode.get()).unwrap_or(FileType::RegularFile)
    }
    pub fn is_dir(&self) -> bool {
        self.kind() == FileType::Directory
    }
    pub fn nlink(&self) -> u32 {
        self.nlink.get()
    }
    pub fn set_nlink(&self, n: u32) {
        self.nlink.set(n);
    }
    pub fn opens(&self) -> u32 {
        self.opens.get()
    }
    pub fn set_opens(&self, n: u32) {
        self.opens.set(n);
    }
    /// Marks the inode's resources as given back; false if they already were.
    pub fn mark_freed(&self) -> bool {
        let mode = self.mode.get();
        self.mode.set(mode | FREED);
        mode & FREED == 0
    }
    pub fn uid(&self) -> u32 {
        self.uid.get()
    }
    pub fn set_uid(&self, uid: u32) {
        self.uid.set(uid);
    }
    pub fn gid(&self) -> u32 {
        self.gid.get()
    }
    pub fn set_gid(&self, gid: u32) {
        self.gid.set(gid);
    }
    pub fn size(&self) -> u64 {
        self.size.get()
    }
    pub fn set_size(&self, size: u64) {
        self.size.set(size);
    }

    fn time(&self, which: usize) -> SystemTime {
        join_time(self.secs[which].get(), self.nsecs[which].get())
    }
    fn set_time(&self, which: usize, t: SystemTime) {
        let (s, n) = split_time(t);
        self.secs[which].set(s);
        self.nsecs[which].set(n);
    }
    fn time_key(&self, which: usize) -> (i64, u32) {
        (self.secs[which].get(), self.nsecs[which].get())
    }

    pub fn set_atime(&self, t: SystemTime) {
        self.set_time(ATIME, t);
    }
    pub fn set_mtime(&self, t: SystemTime) {
        self.set_time(MTIME, t);
    }
    pub fn set_ctime(&self, t: SystemTime) {
        self.set_time(CTIME, t);
    }
    /// A metadata change.
    pub fn changed(&self, now: SystemTime) {
        self.set_ctime(now);
    }
    /// A data change (or, for a directory, an entry change).
    pub fn modified(&self, now: SystemTime) {
        self.set_mtime(now);
        self.set_ctime(now);
    }
    /// An access, under relatime: the access time moves only when it is not newer
    /// than the modification or change time, or is a day old.
    pub fn accessed(&self, now: SystemTime) {
        let atime = self.time_key(ATIME);
        let stale = atime <= self.time_key(MTIME)
            || atime <= self.time_key(CTIME)
            || now
                .duration_since(self.time(ATIME))
                .is_ok_and(|age| age >= RELATIME_SLACK);
        if stale {
            self.set_atime(now);
        }
    }

    pub fn body(&self) -> Ref<'_, Body> {
        self.body.borrow()
    }
    pub fn body_mut(&self) -> RefMut<'_, Body> {
        self.body.borrow_mut()
    }

    /// The directory's entries, or ENOTDIR.
    pub fn dir(&self) -> Result<Ref<'_, Dir>, Errno> {
        Ref::filter_map(self.body.borrow(), |b| match &b.content {
            Content::Dir(d) => Some(&**d),
            _ => None,
        })
        .map_err(|_| Errno::ENOTDIR)
    }
    pub fn dir_mut(&self) -> Result<RefMut<'_, Dir>, Errno> {
        RefMut::filter_map(self.body.borrow_mut(), |b| match &mut b.content {
            Content::Dir(d) => Some(&mut **d),
            _ => None,
        })
        .map_err(|_| Errno::ENOTDIR)
    }

    /// The directory this directory is an entry of.
    pub fn parent(&self) -> Option<Rc<Inode>> {
        self.dir().ok().and_then(|d| d.parent.upgrade())
    }

    pub fn attr(&self) -> Attr {
        let body = self.body.borrow();
        let (size, rdev) = match &body.content {
            Content::Dir(d) => ((2 + d.len() as u64) * DIRENT_SIZE, 0),
            Content::Special(rdev) => (0, *rdev),
            _ => (self.size.get(), 0),
        };
        let blocks = match &body.content {
            Content::File(Some(d)) => d.pages() * BLOCKS_PER_PAGE,
            Content::Symlink(t) if t.len() >= LONG_SYMLINK => BLOCKS_PER_PAGE,
            _ => 0,
        };
        Attr {
            // memfs's own inode number: st_ino stays the same while the file exists.
            ino: self.id,
            size,
            blocks,
            atime: self.time(ATIME),
            mtime: self.time(MTIME),
            ctime: self.time(CTIME),
            kind: self.kind(),
            perm: self.perm() as u16,
            nlink: self.nlink.get(),
            uid: self.uid.get(),
            gid: self.gid.get(),
            rdev,
            blksize: crate::data::PAGE as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_stays_small() {
        assert!(
            std::mem::size_of::<Inode>() <= 104,
            "{}",
            std::mem::size_of::<Inode>()
        );
    }

    #[test]
    fn times_round_trip_before_and_after_the_epoch() {
        for (s, n) in [
            (0i64, 0u32),
            (1, 5),
            (-1, 0),
            (-1, 999_999_999),
            (-100, 1),
            (1 << 40, 7),
        ] {
            assert_eq!(split_time(join_time(s, n)), (s, n));
        }
    }

    #[test]
    fn relatime() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let i = Inode::new(1, S_IFREG | 0o644, 0, 0, Content::File(None), t0);
        let t1 = t0 + Duration::from_secs(10);
        i.accessed(t1); // atime == mtime: updated
        assert_eq!(i.attr().atime, t1);
        let t2 = t1 + Duration::from_secs(10);
        i.accessed(t2); // newer than mtime and ctime, and young: kept
        assert_eq!(i.attr().atime, t1);
        let t3 = t1 + RELATIME_SLACK;
        i.accessed(t3);
        assert_eq!(i.attr().atime, t3);
    }
}
