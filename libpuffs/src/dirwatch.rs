//! Watching a directory a file system serves from (a layer's backing directory):
//! when it is removed, moved or the file system under it goes away, the file system
//! keeps answering (requests on a removed directory fail with ENOENT, on a moved one
//! they follow it), and the daemon says once, in its log, what happened and what the
//! caller will see. Without this, the only sign would be a stream of ENOENTs with no
//! reason anywhere.
//!
//! The watch is a pollable fd on the loop: inotify on Linux, a kqueue with an
//! EVFILT_VNODE filter on the BSDs and macOS (the `kqueue` crate's `Watcher`).
//! Start it from `Ops::started` (the null layer does); it ends with the mount.

use std::os::fd::OwnedFd;
use std::path::Path;

use crate::cx::Cx;
use crate::ops::Ops;

/// What happened to the backing directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirEvent {
    /// It was removed: every request on it now fails with ENOENT.
    Removed,
    /// It was renamed or moved: the mount keeps serving it at its new place.
    Moved,
    /// The file system holding it was unmounted or revoked.
    Gone,
}

impl DirEvent {
    /// The log line for this event about the backing directory `dir`.
    pub fn describe(self, dir: &Path) -> String {
        let dir = dir.display();
        match self {
            DirEvent::Removed => format!(
                "backing directory {dir} was removed: requests on the mount fail with \
                 ENOENT until it is unmounted"
            ),
            DirEvent::Moved => format!(
                "backing directory {dir} was moved or renamed: the mount keeps serving it \
                 at its new place"
            ),
            DirEvent::Gone => format!(
                "the file system holding backing directory {dir} was unmounted: requests \
                 on the mount fail until it is unmounted"
            ),
        }
    }
}

/// Logs what happens to the backing directory `root` (opened as `dir`) until the
/// watch ends (the directory is gone) or the mount stops. A watch that cannot be set
/// up is logged at debug level and skipped: it only explains errors, it causes none.
pub async fn watch_dir<F: Ops>(cx: &Cx<F>, dir: &OwnedFd, root: &Path) {
    let watch = match sys::Watch::new(dir, root) {
        Ok(w) => w,
        Err(e) => {
            log::debug!("no watch on backing directory {}: {e}", root.display());
            return;
        }
    };
    let reg = match cx.register(watch) {
        Ok(r) => r,
        Err(e) => {
            log::debug!("no watch on backing directory {}: {e}", root.display());
            return;
        }
    };
    loop {
        let (events, ended) = match reg.read_with(|w| w.events()).await {
            Ok(got) => got,
            Err(e) => {
                log::debug!("watch on backing directory {} ended: {e}", root.display());
                return;
            }
        };
        for ev in events {
            match ev {
                DirEvent::Moved => log::warn!("{}", ev.describe(root)),
                _ => log::error!("{}", ev.describe(root)),
            }
        }
        if ended {
            return;
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::OsString;
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
    use std::path::Path;

    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

    use super::DirEvent;

    /// An inotify instance watching one directory, and its parent for its name.
    pub struct Watch {
        ino: Inotify,
        /// The parent's watch and the directory's name in it. A directory the layer
        /// holds open reports IN_DELETE_SELF only when the last fd on it closes, which
        /// is after the mount: its removal is seen as its name going from the parent.
        parent: Option<(WatchDescriptor, OsString)>,
        /// The directory itself, to tell its removal from a rename of another
        /// directory onto or off its old name.
        dir: OwnedFd,
    }

    impl Watch {
        /// Watches the directory open as `dir` (through its /proc/self/fd link, so it
        /// is the directory the layer holds, whatever its path now names), found at
        /// `path`.
        pub fn new(dir: &OwnedFd, path: &Path) -> io::Result<Watch> {
            let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
            let own = format!("/proc/self/fd/{}", dir.as_raw_fd());
            ino.add_watch(
                own.as_str(),
                AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_UNMOUNT,
            )?;
            let path = std::fs::canonicalize(path)?;
            let parent = match (path.parent(), path.file_name()) {
                (Some(up), Some(name)) => {
                    let what = AddWatchFlags::IN_DELETE
                        | AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_ONLYDIR;
                    Some((ino.add_watch(up, what)?, name.to_owned()))
                }
                _ => None,
            };
            let dir = dir.try_clone()?;
            Ok(Watch { ino, parent, dir })
        }

        /// The events queued now, and whether the watch has ended.
        pub fn events(&self) -> io::Result<(Vec<DirEvent>, bool)> {
            let mut out = Vec::new();
            for ev in self.ino.read_events()? {
                let m = ev.mask;
                let ours = match (&self.parent, &ev.name) {
                    (Some((wd, name)), Some(n)) => *wd == ev.wd && n == name,
                    _ => false,
                };
                if ours {
                    // Its name was removed or renamed over: that matters only when the
                    // directory the layer holds is linked nowhere any more.
                    if self.unlinked()? {
                        out.push(DirEvent::Removed);
                    }
                } else if m.contains(AddWatchFlags::IN_MOVE_SELF) {
                    out.push(DirEvent::Moved);
                } else if m.contains(AddWatchFlags::IN_UNMOUNT) {
                    out.push(DirEvent::Gone);
                }
            }
            let ended = out.iter().any(|e| *e != DirEvent::Moved);
            Ok((out, ended))
        }

        /// Whether the directory has no name left (a removed directory has no links).
        fn unlinked(&self) -> io::Result<bool> {
            Ok(nix::sys::stat::fstat(&self.dir)?.st_nlink == 0)
        }
    }

    impl AsFd for Watch {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.ino.as_fd()
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
    use std::path::Path;

    use kqueue::{EventData, EventFilter, FilterFlag, Vnode, Watcher};

    use super::DirEvent;

    /// A kqueue with an EVFILT_VNODE filter on one directory.
    pub struct Watch {
        watcher: Watcher,
        /// The watched directory's own fd: the filter lives as long as it is open.
        _dir: OwnedFd,
    }

    impl Watch {
        /// Watches the directory open as `dir` (a duplicate of its fd is kept); the
        /// vnode filter reports its removal at once, open or not.
        pub fn new(dir: &OwnedFd, _path: &Path) -> io::Result<Watch> {
            let dir = dir.try_clone()?;
            let mut watcher = Watcher::new()?;
            let what = FilterFlag::NOTE_DELETE | FilterFlag::NOTE_RENAME | FilterFlag::NOTE_REVOKE;
            watcher.add_fd(dir.as_raw_fd(), EventFilter::EVFILT_VNODE, what)?;
            watcher.watch()?;
            Ok(Watch { watcher, _dir: dir })
        }

        /// The events queued now, and whether the watch has ended.
        pub fn events(&self) -> io::Result<(Vec<DirEvent>, bool)> {
            let mut out = Vec::new();
            let mut ended = false;
            while let Some(ev) = self.watcher.poll(None) {
                match ev.data {
                    EventData::Vnode(Vnode::Delete) => {
                        out.push(DirEvent::Removed);
                        ended = true;
                    }
                    EventData::Vnode(Vnode::Rename) => out.push(DirEvent::Moved),
                    EventData::Vnode(Vnode::Revoke) => {
                        out.push(DirEvent::Gone);
                        ended = true;
                    }
                    EventData::Error(e) => return Err(e),
                    _ => {}
                }
            }
            if out.is_empty() && !ended {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok((out, ended))
        }
    }

    impl AsFd for Watch {
        fn as_fd(&self) -> BorrowedFd<'_> {
            // SAFETY: the kqueue fd belongs to `self.watcher`, which closes it only when
            // dropped; the borrow cannot outlive `&self`, and so not the watcher.
            unsafe { BorrowedFd::borrow_raw(self.watcher.as_raw_fd()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_names_the_directory_and_what_the_caller_sees() {
        let d = Path::new("/srv/data");
        assert!(DirEvent::Removed
            .describe(d)
            .contains("/srv/data was removed"));
        assert!(DirEvent::Removed.describe(d).contains("ENOENT"));
        assert!(DirEvent::Moved.describe(d).contains("new place"));
        assert!(DirEvent::Gone.describe(d).contains("unmounted"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn removing_and_moving_the_directory_are_seen() {
        use nix::fcntl::{open, OFlag};
        use nix::sys::stat::Mode;
        let base = std::env::temp_dir().join(format!("puffs-watch-{}", std::process::id()));
        let dir = base.join("d");
        std::fs::create_dir_all(&dir).unwrap();
        let fd = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let w = sys::Watch::new(&fd, &dir).unwrap();
        let none = w.events().map(|got| got.0);
        assert!(matches!(none, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock));
        // Moved away and back (the parent sees a rename onto the name, which is
        // the directory itself): two moves, no removal.
        std::fs::rename(&dir, base.join("e")).unwrap();
        std::fs::rename(base.join("e"), &dir).unwrap();
        let moved = (vec![DirEvent::Moved, DirEvent::Moved], false);
        assert_eq!(w.events().unwrap(), moved);
        // Replaced by another directory renamed onto its name, and that one
        // removed: ours is removed only by the first.
        std::fs::create_dir(base.join("f")).unwrap();
        std::fs::rename(&dir, base.join("e")).unwrap();
        std::fs::rename(base.join("f"), &dir).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(w.events().unwrap(), (vec![DirEvent::Moved], false));
        std::fs::rename(base.join("e"), &dir).unwrap();
        let _ = w.events();
        // Removed while the fd is open: seen through the parent, at once.
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(w.events().unwrap(), (vec![DirEvent::Removed], true));
        std::fs::remove_dir(&base).unwrap();
    }
}
