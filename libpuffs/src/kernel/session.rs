//! Mounting: check the mount point, build fuser's config from our settings, run the
//! INIT handshake (`Session::new` returns once it is answered: the mount is up), and
//! start the reader thread. Unmounting goes through fuser's unmounter.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use fuser::{Config, MountOption, SessionACL, SessionUnmounter};

use super::adapter::{Adapter, InitParams};
use super::request::Inbox;
use crate::attr::{Attr, Statvfs};
use crate::error::Error;
use crate::mount_flags::MountFlags;
use crate::notify::Notifier;
use crate::op::OpMask;

/// What the kernel side needs to mount a file system: plain values, gathered by the
/// builder from its settings and the file system's constants.
pub(crate) struct MountParams<'a> {
    /// The type shown as fuse.TYPENAME.
    pub typename: &'a str,
    /// The "mntfromname": a device, a host:path, or "none".
    pub source: &'a str,
    pub flags: &'a MountFlags,
    /// The ops the file system implements; the rest are refused by the adapter.
    pub opmask: OpMask,
    /// The statvfs answer when the fs does not implement statvfs.
    pub statvfs: Statvfs,
    /// The root's attributes when the fs does not implement getattr.
    pub root_attr: Attr,
    /// The largest write the kernel sends (and, through fuser, the largest read).
    pub max_write: u32,
    /// The kernel's readahead window for the mount (None: the kernel's default).
    pub max_readahead: Option<u32>,
    pub writeback_cache: bool,
    /// The fs clears set-uid/set-gid itself (`Ops::KILLS_SUIDGID`).
    pub kills_suidgid: bool,
    /// File handles outlive the kernel's cache (`Ops::lookup_ino`).
    pub export_support: bool,
    /// Ask for kernel passthrough (`PuffsUserMount::passthrough`).
    pub passthrough: bool,
}

/// A mounted file system's kernel side.
pub(crate) struct Session {
    unmount: Unmount,
    _reader: JoinHandle<io::Result<()>>,
    pub(crate) mountpoint: PathBuf,
}

/// Who mounted, and so who unmounts.
enum Unmount {
    /// We called mount(2) ourselves (as root).
    Own { mounted: bool },
    /// fuser mounted through fusermount3 (unprivileged, or auto_unmount).
    Fuser(SessionUnmounter),
}

impl Session {
    /// Detaches the mount; the reader sees the connection end once nobody uses it.
    pub(crate) fn unmount(&mut self) -> io::Result<()> {
        match &mut self.unmount {
            Unmount::Own { mounted } if *mounted => {
                *mounted = false;
                match detach(&self.mountpoint) {
                    // Already gone (unmounted from outside): nothing left to do.
                    Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Unmount::Own { .. } => Ok(()),
            Unmount::Fuser(u) => u.unmount(),
        }
    }
}

/// Unmounts `dir` even while it is in use: it vanishes from the namespace now and
/// the kernel connection ends when its last user lets go.
#[cfg(target_os = "linux")]
fn detach(dir: &Path) -> nix::Result<()> {
    nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH)
}

#[cfg(not(target_os = "linux"))]
fn detach(dir: &Path) -> nix::Result<()> {
    nix::mount::unmount(dir, nix::mount::MntFlags::MNT_FORCE)
}

fn mount_error(path: &Path, why: &str, source: io::Error) -> Error {
    Error::Mount {
        path: path.to_owned(),
        why: why.to_owned(),
        source,
    }
}

/// Refuses a mount point that cannot work, with the reason spelled out.
fn check_mountpoint(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(mount_error(dir, "the mount point does not exist", e))
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(mount_error(
            dir,
            "no permission to reach the mount point",
            e,
        )),
        Err(e) => Err(mount_error(dir, "cannot look at the mount point", e)),
        Ok(m) if !m.is_dir() => Err(mount_error(
            dir,
            "the mount point is not a directory",
            io::Error::from_raw_os_error(libc::ENOTDIR),
        )),
        Ok(_) => Ok(()),
    }
}

/// Opens /dev/fuse, refusing a machine without it with the reason spelled out. None:
/// no permission, which is fine for an unprivileged user, whom fusermount3 serves.
fn open_dev_fuse(dir: &Path) -> Result<Option<File>, Error> {
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(dev) => Ok(Some(dev)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(mount_error(
            dir,
            "no /dev/fuse: load the fuse kernel module (modprobe fuse) or install fuse3",
            e,
        )),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(None),
        Err(e) => Err(mount_error(dir, "cannot open /dev/fuse", e)),
    }
}

fn fuser_config(flags: &MountFlags, typename: &str, source: &str) -> Config {
    let mut opts = vec![
        MountOption::FSName(flags.fsname.clone().unwrap_or_else(|| source.to_owned())),
        MountOption::Subtype(flags.subtype.clone().unwrap_or_else(|| typename.to_owned())),
    ];
    let pairs = [
        (flags.ro, MountOption::RO),
        (flags.nosuid, MountOption::NoSuid),
        (flags.nodev, MountOption::NoDev),
        (flags.noexec, MountOption::NoExec),
        (flags.noatime, MountOption::NoAtime),
        (flags.default_permissions, MountOption::DefaultPermissions),
        (flags.auto_unmount, MountOption::AutoUnmount),
    ];
    opts.extend(pairs.into_iter().filter(|(on, _)| *on).map(|(_, o)| o));
    let mut config = Config::default();
    config.mount_options = opts;
    config.acl = if flags.allow_other {
        SessionACL::All
    } else if flags.auto_unmount {
        // fusermount3 needs allow_other-like access for auto_unmount; root and owner
        // is the narrowest fuser accepts.
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config
}

/// Mounts a file system described by `p` on `dir`, connects `notifier` to the new
/// mount's channel, and starts the reader thread, which queues requests on `inbox`.
pub(crate) fn mount(
    dir: &Path,
    p: &MountParams<'_>,
    inbox: &Arc<Inbox>,
    notifier: &Notifier,
) -> Result<Session, Error> {
    check_mountpoint(dir)?;
    let dev = open_dev_fuse(dir)?;
    let dir = dir
        .canonicalize()
        .map_err(|e| mount_error(dir, "cannot resolve the mount point", e))?;
    let init = InitParams {
        max_write: p.max_write,
        max_readahead: p.max_readahead,
        writeback_cache: p.writeback_cache,
        kills_suidgid: p.kills_suidgid,
        export_support: p.export_support,
        passthrough: p.passthrough,
    };
    let adapter = Adapter::new(Arc::clone(inbox), p.opmask, p.statvfs, p.root_attr, init);
    let config = fuser_config(p.flags, p.typename, p.source);
    let own = nix::unistd::geteuid().is_root() && !p.flags.auto_unmount;
    let denied = dev.is_none();
    let (session, unmount) = if let Some(dev) = dev.filter(|_| own) {
        let fd = mount_as_root(dev, &dir, p.flags, p.typename, p.source)?;
        let session =
            fuser::Session::from_fd(adapter, fd, config.acl, config.clone()).map_err(|e| {
                let _ = detach(&dir);
                mount_error(&dir, "the INIT handshake with the kernel failed", e)
            })?;
        (session, Unmount::Own { mounted: true })
    } else {
        let mut session = fuser::Session::new(adapter, &dir, &config)
            .map_err(|e| refused_mount_without_dev(&dir, e, denied))?;
        let unmounter = session.unmount_callable();
        (session, Unmount::Fuser(unmounter))
    };
    if let Some(ra) = p.max_readahead {
        // After INIT (done when the session exists), which would lower it again.
        match super::readahead::set_window(&dir, ra) {
            Ok(now) => log::debug!("readahead window of {}: {now} bytes", dir.display()),
            // Not root, say: the kernel's default stays, which works, only slower.
            Err(e) => log::info!("cannot set the readahead window to {ra} bytes: {e}"),
        }
    }
    notifier.connect(super::notify::sender(session.notifier()))?;
    let reader = std::thread::Builder::new()
        .name("puffs-kernel".into())
        .spawn(move || session.run())?;
    log::info!("mounted {} on {}", p.typename, dir.display());
    Ok(Session {
        unmount,
        _reader: reader,
        mountpoint: dir,
    })
}

/// A failed mount, with what the errno means for someone mounting a FUSE fs.
fn refused_mount(dir: &Path, e: io::Error) -> Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "permission denied (mount as root, or install fuse3 for fusermount3)"
        }
        Some(libc::ENODEV) => "the kernel has no FUSE support",
        Some(libc::ENOTCONN) => "the mount point is a dead FUSE mount (unmount it first)",
        _ => "the kernel refused the mount",
    };
    mount_error(dir, why, e)
}

/// A failed mount through fuser. By a user who could not open /dev/fuse: fuser opens it
/// itself before any fusermount3, so the denial is the reason; say so, with the
/// device's mode. The mount point was checked, so ENOENT here is fuser failing to run fusermount3.
fn refused_mount_without_dev(dir: &Path, e: io::Error, dev_denied: bool) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        let why = "fusermount3 was not found (it mounts for users and for auto_unmount): \
                   install fuse3";
        return mount_error(dir, why, e);
    }
    let denied = matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES));
    if !(dev_denied && denied) {
        return refused_mount(dir, e);
    }
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata("/dev/fuse").map_or("unknown mode".to_owned(), |m| {
        format!(
            "mode {:04o}, owner {}:{}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        )
    });
    let why = format!(
        "cannot open /dev/fuse ({mode}) for reading and writing; it must be usable by \
         you (mode 0666, as fuse3 installs it), or mount as root"
    );
    mount_error(dir, &why, e)
}

/// mount(2) of type fuse.TYPE, so /proc/mounts shows the type (fuser's own root mount
/// says plain "fuse"). Returns the /dev/fuse fd the kernel will talk to.
#[cfg(target_os = "linux")]
fn mount_as_root(
    dev: File,
    dir: &Path,
    flags: &MountFlags,
    typename: &str,
    source: &str,
) -> Result<OwnedFd, Error> {
    use nix::mount::MsFlags;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    let root_mode = std::fs::metadata(dir)
        .map(|m| m.mode() & libc::S_IFMT)
        .unwrap_or(libc::S_IFDIR);
    let mut data = format!(
        "fd={},rootmode={:o},user_id=0,group_id=0",
        dev.as_raw_fd(),
        root_mode
    );
    if flags.default_permissions {
        data.push_str(",default_permissions");
    }
    if flags.allow_other {
        data.push_str(",allow_other");
    }
    // Like libfuse: no set-uid programs and no device nodes from a user file system.
    let mut ms = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (on, f) in [
        (flags.ro, MsFlags::MS_RDONLY),
        (flags.noexec, MsFlags::MS_NOEXEC),
        (flags.noatime, MsFlags::MS_NOATIME),
    ] {
        if on {
            ms |= f;
        }
    }
    let fstype = format!("fuse.{}", flags.subtype.as_deref().unwrap_or(typename));
    let fsname = flags.fsname.as_deref().unwrap_or(source);
    nix::mount::mount(
        Some(fsname),
        dir,
        Some(fstype.as_str()),
        ms,
        Some(data.as_str()),
    )
    .map_err(|e| refused_mount(dir, e.into()))?;
    Ok(OwnedFd::from(dev))
}

#[cfg(not(target_os = "linux"))]
fn mount_as_root(
    dev: File,
    dir: &Path,
    flags: &MountFlags,
    typename: &str,
    source: &str,
) -> Result<OwnedFd, Error> {
    let _ = (dev, flags, typename, source);
    Err(mount_error(
        dir,
        "direct mounting is implemented for Linux only; mount through the FUSE mount helper",
        io::Error::from_raw_os_error(libc::ENOSYS),
    ))
}
