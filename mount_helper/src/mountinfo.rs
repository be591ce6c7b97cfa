//! The system's mount table: /proc/self/mountinfo on Linux, getmntinfo(3)
//! on FreeBSD.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One mounted file system.
#[derive(Clone, Debug, PartialEq)]
pub struct MountEntry {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
}

impl MountEntry {
    /// Whether the kernel's FUSE driver serves this mount.
    pub fn is_fuse(&self) -> bool {
        matches!(self.fstype.as_str(), "fuse" | "fuseblk" | "fusefs")
            || self.fuse_subtype().is_some()
    }

    /// `memfs` for a mount of type `fuse.memfs` (Linux) or `fusefs.memfs`
    /// (FreeBSD).
    pub fn fuse_subtype(&self) -> Option<&str> {
        let t = self.fstype.as_str();
        t.strip_prefix("fuse.")
            .or_else(|| t.strip_prefix("fusefs."))
            .filter(|s| !s.is_empty())
    }
}

/// The mount whose mount point is `target`; the last one listed, which is
/// the one on top when mounts are stacked.
pub fn find_mount<'a>(table: &'a [MountEntry], target: &Path) -> Option<&'a MountEntry> {
    table.iter().rev().find(|m| m.target == target)
}

/// Reads the current mount table.
#[cfg(target_os = "linux")]
pub fn mount_table() -> io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read("/proc/self/mountinfo")?))
}

/// Parses /proc/self/mountinfo. Each line is
/// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`;
/// lines that do not have that shape are skipped.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    text.split(|&b| b == b'\n')
        .filter_map(parse_mountinfo_line)
        .collect()
}

fn parse_mountinfo_line(line: &[u8]) -> Option<MountEntry> {
    let fields: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .collect();
    let dash = fields.iter().position(|f| *f == b"-")?;
    if dash < 6 {
        return None;
    }
    let target = PathBuf::from(OsString::from_vec(unescape_octal(fields[4])));
    let fstype = fields.get(dash + 1)?;
    let source = fields.get(dash + 2)?;
    Some(MountEntry {
        source: String::from_utf8_lossy(&unescape_octal(source)).into_owned(),
        target,
        fstype: String::from_utf8_lossy(&unescape_octal(fstype)).into_owned(),
    })
}

/// Undoes the kernel's escapes of space, tab, newline and backslash as
/// `\ooo` (three octal digits); anything else is kept as it is.
pub fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        match octal_escape(&field[i..]) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

fn octal_escape(s: &[u8]) -> Option<u8> {
    let [b'\\', a, b, c, ..] = *s else {
        return None;
    };
    let digit = |d: u8| (b'0'..=b'7').contains(&d).then(|| u32::from(d - b'0'));
    let value = digit(a)? * 64 + digit(b)? * 8 + digit(c)?;
    u8::try_from(value).ok()
}

/// Reads the current mount table.
#[cfg(target_os = "freebsd")]
pub fn mount_table() -> io::Result<Vec<MountEntry>> {
    use std::ffi::CStr;

    let mut buf: *mut libc::statfs = std::ptr::null_mut();
    // SAFETY: getmntinfo stores a pointer to a buffer it owns (valid until
    // the next call on this thread) and returns how many entries it holds.
    let n = unsafe { libc::getmntinfo(&mut buf, libc::MNT_NOWAIT) };
    if n <= 0 || buf.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: buf points to n initialized statfs structures (see above),
    // which we copy out of before returning.
    let entries = unsafe { std::slice::from_raw_parts(buf, n as usize) };
    // SAFETY: the kernel NUL-terminates the name fields of struct statfs.
    let text = |name: &[libc::c_char]| unsafe { CStr::from_ptr(name.as_ptr()) }.to_owned();
    Ok(entries
        .iter()
        .map(|e| MountEntry {
            source: text(&e.f_mntfromname).to_string_lossy().into_owned(),
            target: PathBuf::from(OsString::from_vec(text(&e.f_mntonname).into_bytes())),
            fstype: text(&e.f_fstypename).to_string_lossy().into_owned(),
        })
        .collect())
}

/// Reads the current mount table.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub fn mount_table() -> io::Result<Vec<MountEntry>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "reading the mount table is not supported on this system",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw
36 22 0:32 / /tmp/my\\040dir rw,nosuid,nodev,relatime shared:20 master:3 - fuse.memfs none rw,user_id=0,group_id=0
37 22 0:33 / /mnt/a\\134b\\011c rw - fuse host:/x\\040y rw
38 22 0:34 / /mnt/plain rw - fusectl fusectl rw
garbage line
39 22 0:35 / /mnt/short rw -
";

    #[test]
    fn parses_lines_and_skips_garbage() {
        let table = parse_mountinfo(SAMPLE);
        assert_eq!(table.len(), 4);
        assert_eq!(table[0].target, PathBuf::from("/"));
        assert_eq!(table[0].fstype, "ext4");
        assert_eq!(table[0].source, "/dev/root");
    }

    #[test]
    fn handles_optional_fields_and_octal_escapes() {
        let table = parse_mountinfo(SAMPLE);
        assert_eq!(table[1].target, PathBuf::from("/tmp/my dir"));
        assert_eq!(table[1].fstype, "fuse.memfs");
        assert_eq!(table[1].source, "none");
        assert_eq!(table[2].target, PathBuf::from("/mnt/a\\b\tc"));
        assert_eq!(table[2].source, "host:/x y");
    }

    #[test]
    fn fuse_types() {
        let table = parse_mountinfo(SAMPLE);
        assert_eq!(table[1].fuse_subtype(), Some("memfs"));
        assert!(table[1].is_fuse());
        assert_eq!(table[2].fuse_subtype(), None);
        assert!(table[2].is_fuse());
        assert!(!table[3].is_fuse(), "fusectl is not a FUSE mount");
        assert!(!table[0].is_fuse());
    }

    #[test]
    fn finds_the_topmost_mount() {
        let mut table = parse_mountinfo(SAMPLE);
        let mut top = table[1].clone();
        top.fstype = "fuse.hellofs".into();
        table.push(top);
        let found = find_mount(&table, Path::new("/tmp/my dir")).unwrap();
        assert_eq!(found.fstype, "fuse.hellofs");
        assert!(find_mount(&table, Path::new("/tmp/other")).is_none());
    }

    #[test]
    fn bad_escapes_stay_as_they_are() {
        assert_eq!(unescape_octal(b"a\\04"), b"a\\04");
        assert_eq!(unescape_octal(b"a\\089"), b"a\\089");
        assert_eq!(unescape_octal(b"\\777x"), b"\\777x");
        assert_eq!(unescape_octal(b"\\"), b"\\");
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5_000 {
            let bytes: Vec<u8> = (0..(state % 120))
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let alphabet = b"0123 -\\/\nfuse.";
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            state = state.wrapping_add(1);
            let _ = parse_mountinfo(&bytes);
        }
    }
}
