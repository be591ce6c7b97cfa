//! File handles and export: `name_to_handle_at` + `open_by_handle_at` on memfs after
//! the kernel has dropped its caches (so the node must be found again by number,
//! through `Ops::lookup_ino`), a stale handle of a deleted file, and nfs-ganesha
//! serving a memfs mount over NFSv4 (skipped with the reason when not installed).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use puffs_tests::*;

/// `struct file_handle` with room for the largest handle (MAX_HANDLE_SZ).
#[repr(C)]
struct Handle {
    bytes: u32,
    kind: i32,
    data: [u8; 128],
}

/// The file handle of `path` (name_to_handle_at).
fn handle_of(path: &Path) -> Handle {
    let mut h = Handle {
        bytes: 128,
        kind: 0,
        data: [0; 128],
    };
    let mut mount_id = 0;
    let c = cpath(path);
    // SAFETY: `h` is a file_handle header followed by `h.bytes` bytes of room, as the
    // call requires; `c` is a NUL-terminated path and `mount_id` a valid out pointer.
    let r = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            (&mut h as *mut Handle).cast::<libc::file_handle>(),
            &mut mount_id,
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "name_to_handle_at {}: errno {}",
        path.display(),
        last_errno()
    );
    h
}

/// Opens what `h` names on the mount that `mount_fd` is in (open_by_handle_at).
fn open_by_handle(mount_fd: &File, h: &mut Handle, flags: i32) -> Result<File, i32> {
    // SAFETY: `h` came from name_to_handle_at and keeps its size; the fd is open.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (h as *mut Handle).cast::<libc::file_handle>(),
            flags,
        )
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: open_by_handle_at returned a new fd that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Drops the kernel's dentries and inodes (and page cache): every node the kernel
/// does not hold open is forgotten, and the file system hears FORGETs.
fn drop_caches() {
    std::fs::write("/proc/sys/vm/drop_caches", b"3").expect("write /proc/sys/vm/drop_caches");
}

fn read_to_string(mut f: File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).expect("read");
    s
}

/// Makes `name` with `text` in the mount, and its handle.
fn file_with_handle(m: &Mounted, name: &str, text: &str) -> Handle {
    std::fs::write(m.join(name), text).unwrap();
    handle_of(&m.join(name))
}

#[test]
fn a_file_handle_outlives_the_kernels_cache_with_export() {
    require_fuse!();
    let m = Mounted::new("memfs", "export");
    let mut h = file_with_handle(&m, "a", "kept");
    std::fs::create_dir(m.join("d")).unwrap();
    std::fs::write(m.join("d/inner"), "in d").unwrap();
    let mut hd = handle_of(&m.join("d"));
    let mount_fd = File::open(m.path()).unwrap();
    drop_caches();
    let f = open_by_handle(&mount_fd, &mut h, libc::O_RDONLY).expect("open_by_handle_at");
    assert_eq!(read_to_string(f), "kept");
    // A directory: the kernel also reconnects it to its parent ("..", readdir).
    let d = open_by_handle(&mount_fd, &mut hd, libc::O_RDONLY | libc::O_DIRECTORY)
        .expect("open_by_handle_at of a directory");
    let inner = nix::fcntl::openat(
        &d,
        "inner",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .expect("openat in the reopened directory");
    assert_eq!(read_to_string(File::from(inner)), "in d");
}

#[test]
fn without_export_a_forgotten_node_is_stale() {
    // The control: the same sequence fails without export support, so the test above
    // really exercised finding a forgotten node.
    require_fuse!();
    let m = Mounted::new("memfs", "");
    let mut h = file_with_handle(&m, "a", "kept");
    let mount_fd = File::open(m.path()).unwrap();
    drop_caches();
    assert_eq!(
        open_by_handle(&mount_fd, &mut h, libc::O_RDONLY).err(),
        Some(libc::ESTALE)
    );
}

#[test]
fn the_handle_of_a_deleted_file_is_stale() {
    require_fuse!();
    let m = Mounted::new("memfs", "export");
    let mut h = file_with_handle(&m, "gone", "x");
    let mut kept = file_with_handle(&m, "kept", "y");
    std::fs::remove_file(m.join("gone")).unwrap();
    let mount_fd = File::open(m.path()).unwrap();
    drop_caches();
    assert_eq!(
        open_by_handle(&mount_fd, &mut h, libc::O_RDONLY).err(),
        Some(libc::ESTALE)
    );
    let f = open_by_handle(&mount_fd, &mut kept, libc::O_RDONLY).expect("the other is fine");
    assert_eq!(read_to_string(f), "y");
}

// --- nfs-ganesha ---------------------------------------------------------------

/// Why the ganesha test cannot run here, if it cannot.
fn ganesha_missing() -> Option<String> {
    for bin in [
        "/usr/bin/ganesha.nfsd",
        "/usr/bin/nfs-cat",
        "/usr/bin/nfs-ls",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is missing (apt-get install nfs-ganesha nfs-ganesha-vfs libnfs-utils)"
            ));
        }
    }
    let fsal = ["/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so"];
    if !fsal.iter().any(|p| Path::new(p).exists()) {
        return Some("nfs-ganesha's VFS FSAL is missing (apt-get install nfs-ganesha-vfs)".into());
    }
    None
}

/// A TCP port on 127.0.0.1 that nothing listens on just now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// ganesha.nfsd in the foreground with its own config, killed by pid when dropped.
struct Ganesha {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ganesha {
    fn start(export: &Path, dir: &Path, port: u16) -> Ganesha {
        let conf = dir.join("ganesha.conf");
        let recov = dir.join("recov");
        std::fs::create_dir_all(&recov).unwrap();
        let text = format!(
            r#"NFS_CORE_PARAM {{
    Protocols = 4;
    NFS_Port = {port};
    Bind_addr = 127.0.0.1;
    Enable_RQUOTA = false;
    Enable_NLM = false;
}}
NFSV4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = "{recov}";
    Only_Numeric_Owners = true;
}}
RADOS_KV {{ }}
FSAL {{ VFS {{ }} }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{
    Export_Id = 77;
    Path = "{path}";
    Pseudo = /puffs;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 4;
    Transports = TCP;
    FSAL {{ Name = VFS; }}
}}
"#,
            path = export.display(),
            recov = recov.display(),
        );
        std::fs::write(&conf, text).unwrap();
        let log = dir.join("ganesha.log");
        let child = Command::new("/usr/bin/ganesha.nfsd")
            .arg("-F") // foreground: the pid we kill is the server
            .arg("-f")
            .arg(&conf)
            .arg("-L")
            .arg(&log)
            .arg("-p")
            .arg(dir.join("ganesha.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ganesha.nfsd");
        Ganesha { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn nfs_ganesha_serves_a_memfs_mount() {
    require_fuse!();
    if let Some(why) = ganesha_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let m = Mounted::new("memfs", "export");
    std::fs::write(m.join("hello.txt"), "served by puffs\n").unwrap();
    std::fs::create_dir(m.join("sub")).unwrap();
    std::fs::write(m.join("sub/deep.txt"), "deeper\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut g = Ganesha::start(m.path(), dir.path(), port);
    let url = |p: &str| format!("nfs://127.0.0.1/puffs{p}?version=4&nfsport={port}");
    // Until the server answers (grace period off: it serves as soon as it listens).
    let end = Instant::now() + Duration::from_secs(15);
    let listing = loop {
        let out = run_bounded(
            Command::new("nfs-ls").arg(url("/")),
            Duration::from_secs(10),
        );
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if let Ok(Some(status)) = g.child.try_wait() {
            panic!("ganesha.nfsd exited ({status}); log:\n{}", g.log());
        }
        assert!(
            Instant::now() < end,
            "nfs-ls failed for 15 s: {}\nganesha log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            g.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("nfs-ls over NFSv4 from ganesha:\n{listing}");
    assert!(listing.contains("hello.txt"), "{listing}");
    assert!(listing.contains("sub"), "{listing}");
    let cat = |p: &str| {
        let out = run_bounded(Command::new("nfs-cat").arg(url(p)), Duration::from_secs(10));
        assert!(
            out.status.success(),
            "nfs-cat {p}: {}\nganesha log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            g.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cat("/hello.txt"), "served by puffs\n");
    // ganesha holds file handles, not the kernel's cache: drop it, read again.
    drop_caches();
    assert_eq!(cat("/sub/deep.txt"), "deeper\n");
    assert_eq!(cat("/hello.txt"), "served by puffs\n");
    drop(g);
}
