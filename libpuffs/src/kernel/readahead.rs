//! The kernel's readahead window for a mount. FUSE's INIT can only lower it: the kernel
//! offers its default (`read_ahead_kb` of the mount's backing device info, 128 KiB)
//! and keeps the smaller of that and the answer. A larger window is set after the
//! handshake through `/sys/class/bdi/MAJOR:MINOR/read_ahead_kb` (root only), as
//! `blockdev --setra` does for a disk. The size of each READ request is another
//! matter: FUSE's max_pages, which fuser 0.18 derives from max_write (it cannot be
//! asked for on its own), up to the kernel's `fs.fuse.max_pages_limit` (1 MiB).

use std::io;
use std::path::Path;

/// Sets the readahead window of the FUSE mount on `dir` to `bytes` (rounded up to
/// KiB) unless INIT did; returns the window the kernel reports afterwards, in bytes.
#[cfg(target_os = "linux")]
pub(crate) fn set_window(dir: &Path, bytes: u32) -> io::Result<u32> {
    let dev = device_of(dir)?;
    let knob = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    let read = |knob: &str| -> io::Result<u32> {
        let now = std::fs::read_to_string(knob)?;
        now.trim()
            .parse()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    };
    let want = bytes.div_ceil(1024);
    if read(&knob)? != want {
        std::fs::write(&knob, format!("{want}\n"))
            .map_err(|e| io::Error::new(e.kind(), format!("{knob}: {e}")))?;
    }
    Ok(read(&knob)?.saturating_mul(1024))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_window(_dir: &Path, _bytes: u32) -> io::Result<u32> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The `major:minor` of the file system mounted on `dir`, from /proc/self/mountinfo
/// (a stat of the mount point would wait for the file system, whose loop may not run
/// yet); the last mount on `dir` is the one on top.
#[cfg(target_os = "linux")]
fn device_of(dir: &Path) -> io::Result<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let want = escape(&dir.to_string_lossy());
    info.lines()
        .rev()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let dev = f.nth(2)?;
            let at = f.nth(1)?;
            (at == want).then(|| dev.to_string())
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in /proc/self/mountinfo"))
}

/// A path as mountinfo writes it: space, tab, newline and backslash in octal.
#[cfg(target_os = "linux")]
fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_and_the_root_mount() {
        assert_eq!(escape("/a b\\c"), "/a\\040b\\134c");
        // The root is always mounted; its device is major:minor.
        let dev = device_of(Path::new("/")).unwrap();
        assert!(dev.split(':').all(|n| n.parse::<u32>().is_ok()), "{dev}");
    }
}
