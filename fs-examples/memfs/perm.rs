//! Ownership and permission rules, as Linux applies them to tmpfs.
//!
//! memfs mounts with `default_permissions`, so the kernel checks rwx access and most of
//! these rules before a request arrives; memfs applies them again so that it holds
//! them itself, and because some (the set-gid rules) shape the result.

use puffs::{Cred, Errno, SetTime};

pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;
pub const S_IXGRP: u32 = 0o0010;

pub const MAY_READ: u32 = 4;
pub const MAY_WRITE: u32 = 2;
pub const MAY_EXEC: u32 = 1;

/// The caller, as these rules need it.
pub trait Who {
    fn uid(&self) -> u32;
    fn gid(&self) -> u32;
    /// Membership of `gid`, counting supplementary groups.
    fn in_group(&self, gid: u32) -> bool;
    fn is_root(&self) -> bool {
        self.uid() == 0
    }
}

impl Who for Cred {
    fn uid(&self) -> u32 {
        self.uid
    }
    fn gid(&self) -> u32 {
        self.gid
    }
    fn in_group(&self, gid: u32) -> bool {
        Cred::in_group(self, gid)
    }
}

/// Whether `who` has the `want` bits (MAY_*) on a file of `perm` owned by `uid:gid`.
/// Root may read and write anything, and execute what anyone may execute.
pub fn may(perm: u32, uid: u32, gid: u32, is_dir: bool, who: &impl Who, want: u32) -> bool {
    if who.is_root() {
        return want & MAY_EXEC == 0 || is_dir || perm & 0o111 != 0;
    }
    let bits = if who.uid() == uid {
        perm >> 6
    } else if who.in_group(gid) {
        perm >> 3
    } else {
        perm
    };
    want & !bits & 7 == 0
}

/// In a sticky directory only the entry's owner, the directory's owner or root may
/// remove or rename an entry (EPERM otherwise).
pub fn sticky_ok(dir_perm: u32, dir_uid: u32, victim_uid: u32, who: &impl Who) -> bool {
    dir_perm & S_ISVTX == 0 || who.is_root() || who.uid() == victim_uid || who.uid() == dir_uid
}

/// chmod: the permission bits to store when `who` asks for `new` on a file with owner
/// `uid` and group `gid` (the new group when the same request changes it). Only the owner or root may chmod (EPERM); an unprivileged
/// caller outside the group loses the set-gid bit.
pub fn chmod(new: u32, uid: u32, gid: u32, who: &impl Who) -> Result<u32, Errno> {
    let new = new & 0o7777;
    // (No "killpriv" chmod arrives from the kernel: memfs clears set-uid/set-gid
    // itself, FUSE_HANDLE_KILLPRIV_V2.)
    if who.is_root() {
        return Ok(new);
    }
    if who.uid() != uid {
        return Err(Errno::EPERM);
    }
    if new & S_ISGID != 0 && !who.in_group(gid) {
        return Ok(new & !S_ISGID);
    }
    Ok(new)
}

/// chown: only root may give a file away; the owner may change the group to one of
/// its own groups (or leave it as it is). Anything else is EPERM.
pub fn chown(
    uid: Option<u32>,
    gid: Option<u32>,
    file_uid: u32,
    file_gid: u32,
    who: &impl Who,
) -> Result<(), Errno> {
    if who.is_root() {
        return Ok(());
    }
    if let Some(u) = uid {
        if who.uid() != file_uid || u != file_uid {
            return Err(Errno::EPERM);
        }
    }
    if let Some(g) = gid {
        if who.uid() != file_uid || (g != file_gid && !who.in_group(g)) {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

/// The permission bits after a chown of a non-directory: set-uid goes; set-gid goes
/// when group-execute is set, or when an unprivileged caller is not in the file's
/// (old) group. Directories keep both.
pub fn chown_kill_priv(perm: u32, is_dir: bool, old_gid: u32, who: &impl Who) -> u32 {
    if is_dir {
        return perm;
    }
    let mut p = perm & !S_ISUID;
    if perm & S_ISGID != 0 && (perm & S_IXGRP != 0 || (!who.is_root() && !who.in_group(old_gid))) {
        p &= !S_ISGID;
    }
    p
}

/// The permission bits after a write or truncate of a regular file by `who`: an
/// unprivileged caller loses set-uid, and set-gid when group-execute is set or it is
/// not in the file's group (the kernel's setattr_should_drop_suidgid); root keeps both.
pub fn modify_kill_priv(perm: u32, gid: u32, who: &impl Who) -> u32 {
    if who.is_root() {
        return perm;
    }
    let mut p = perm & !S_ISUID;
    if perm & S_ISGID != 0 && (perm & S_IXGRP != 0 || !who.in_group(gid)) {
        p &= !S_ISGID;
    }
    p
}

/// utimensat: the owner and root may set any times; anyone else may only set both to
/// now, and only with write access (EACCES without it); any other change is EPERM.
pub fn set_times(
    atime: Option<SetTime>,
    mtime: Option<SetTime>,
    owner: u32,
    who: &impl Who,
    writable: impl FnOnce() -> bool,
) -> Result<(), Errno> {
    if (atime.is_none() && mtime.is_none()) || who.is_root() || who.uid() == owner {
        return Ok(());
    }
    if atime == Some(SetTime::Now) && mtime == Some(SetTime::Now) {
        return if writable() {
            Ok(())
        } else {
            Err(Errno::EACCES)
        };
    }
    Err(Errno::EPERM)
}

/// The group and permission bits of a new node of `perm` made by `who` in a directory
/// with `dir_perm` and `dir_gid`. Under a set-gid directory the node takes the
/// directory's group, and a new directory the set-gid bit too; a set-gid, group-
/// executable file made there by an unprivileged caller outside that group loses
/// set-gid.
pub fn new_owner(
    dir_perm: u32,
    dir_gid: u32,
    is_dir: bool,
    perm: u32,
    who: &impl Who,
) -> (u32, u32) {
    let perm = perm & 0o7777;
    if dir_perm & S_ISGID == 0 {
        return (who.gid(), perm);
    }
    if is_dir {
        return (dir_gid, perm | S_ISGID);
    }
    let sgid_x = S_ISGID | S_IXGRP;
    if perm & sgid_x == sgid_x && !who.is_root() && !who.in_group(dir_gid) {
        return (dir_gid, perm & !S_ISGID);
    }
    (dir_gid, perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct U {
        uid: u32,
        gid: u32,
        groups: &'static [u32],
    }

    impl Who for U {
        fn uid(&self) -> u32 {
            self.uid
        }
        fn gid(&self) -> u32 {
            self.gid
        }
        fn in_group(&self, gid: u32) -> bool {
            self.gid == gid || self.groups.contains(&gid)
        }
    }

    const ROOT: U = U {
        uid: 0,
        gid: 0,
        groups: &[],
    };
    const ALICE: U = U {
        uid: 1000,
        gid: 1000,
        groups: &[50],
    };
    const BOB: U = U {
        uid: 1001,
        gid: 1001,
        groups: &[],
    };

    #[test]
    fn access_bits_owner_group_other() {
        // 0640 alice:50
        assert!(may(0o640, 1000, 50, false, &ALICE, MAY_READ | MAY_WRITE));
        assert!(!may(0o640, 1000, 50, false, &ALICE, MAY_EXEC));
        assert!(!may(0o640, 1000, 50, false, &BOB, MAY_READ));
        // Supplementary group 50 counts; the owner class does not fall back to group.
        assert!(may(0o040, 1, 50, false, &ALICE, MAY_READ));
        assert!(!may(0o070, 1000, 50, false, &ALICE, MAY_READ));
        assert!(may(0o000, 1, 1, false, &ROOT, MAY_READ | MAY_WRITE));
        assert!(!may(0o666, 1, 1, false, &ROOT, MAY_EXEC));
        assert!(may(0o000, 1, 1, true, &ROOT, MAY_EXEC));
    }

    #[test]
    fn sticky() {
        let d = 0o1777;
        assert!(sticky_ok(d, 0, 1000, &ALICE)); // her file
        assert!(!sticky_ok(d, 0, 1000, &BOB));
        assert!(sticky_ok(d, 1001, 1000, &BOB)); // his directory
        assert!(sticky_ok(d, 0, 1000, &ROOT));
        assert!(sticky_ok(0o777, 0, 1000, &BOB));
    }

    #[test]
    fn chmod_rules() {
        assert_eq!(chmod(0o600, 1000, 1000, &ALICE), Ok(0o600));
        assert_eq!(chmod(0o600, 1000, 1000, &BOB), Err(Errno::EPERM));
        assert_eq!(chmod(0o644, 1000, 1000, &BOB), Err(Errno::EPERM));
        assert_eq!(chmod(0o2755, 1000, 7, &ALICE), Ok(0o755)); // not in group 7
        assert_eq!(chmod(0o2755, 1000, 50, &ALICE), Ok(0o2755));
        assert_eq!(chmod(0o2755, 1000, 7, &ROOT), Ok(0o2755));
        // A non-owner may not even drop set-uid/set-gid by chmod (memfs clears them
        // itself on writes, so no such request comes from the kernel).
        assert_eq!(chmod(0o755, 1000, 7, &BOB), Err(Errno::EPERM));
        assert_eq!(chmod(0o2745, 1000, 7, &ALICE), Ok(0o745)); // not in group 7
        assert_eq!(chmod(0o4755, 1000, 7, &BOB), Err(Errno::EPERM));
    }

    #[test]
    fn modify_kill_priv_rules() {
        // Root keeps everything; anyone else loses set-uid, and set-gid when
        // group-execute is set or it is outside the group.
        assert_eq!(modify_kill_priv(0o6775, 7, &ROOT), 0o6775);
        assert_eq!(modify_kill_priv(0o6775, 1000, &ALICE), 0o775);
        assert_eq!(modify_kill_priv(0o6765, 1000, &ALICE), 0o2765);
        assert_eq!(modify_kill_priv(0o2767, 7, &BOB), 0o767);
        assert_eq!(modify_kill_priv(0o0755, 7, &BOB), 0o755);
    }

    #[test]
    fn chown_rules() {
        assert_eq!(chown(Some(5), Some(5), 1000, 1000, &ROOT), Ok(()));
        assert_eq!(
            chown(Some(1001), None, 1000, 1000, &ALICE),
            Err(Errno::EPERM)
        );
        assert_eq!(chown(Some(1000), None, 1000, 1000, &ALICE), Ok(()));
        assert_eq!(chown(Some(1000), None, 1000, 1000, &BOB), Err(Errno::EPERM));
        assert_eq!(chown(None, Some(50), 1000, 1000, &ALICE), Ok(()));
        assert_eq!(chown(None, Some(51), 1000, 1000, &ALICE), Err(Errno::EPERM));
        assert_eq!(chown(None, Some(51), 1000, 51, &ALICE), Ok(())); // unchanged
        assert_eq!(chown(None, Some(1001), 1000, 1000, &BOB), Err(Errno::EPERM));
        assert_eq!(chown(None, None, 1000, 1000, &BOB), Ok(()));
    }

    #[test]
    fn chown_clears_set_ids_like_linux() {
        assert_eq!(chown_kill_priv(0o6755, false, 0, &ROOT), 0o755);
        assert_eq!(chown_kill_priv(0o6745, false, 0, &ROOT), 0o2745);
        assert_eq!(chown_kill_priv(0o6745, false, 7, &ALICE), 0o745);
        assert_eq!(chown_kill_priv(0o6745, false, 50, &ALICE), 0o2745);
        assert_eq!(chown_kill_priv(0o7777, true, 0, &ALICE), 0o7777);
    }

    #[test]
    fn times_rules() {
        let now = Some(SetTime::Now);
        let at = Some(SetTime::At(std::time::UNIX_EPOCH));
        assert_eq!(set_times(at, at, 1000, &ALICE, || false), Ok(()));
        assert_eq!(set_times(at, None, 1000, &BOB, || true), Err(Errno::EPERM));
        assert_eq!(set_times(now, None, 1000, &BOB, || true), Err(Errno::EPERM));
        assert_eq!(set_times(now, now, 1000, &BOB, || true), Ok(()));
        assert_eq!(
            set_times(now, now, 1000, &BOB, || false),
            Err(Errno::EACCES)
        );
        assert_eq!(set_times(at, at, 1000, &ROOT, || false), Ok(()));
        assert_eq!(set_times(None, None, 1000, &BOB, || false), Ok(()));
    }

    #[test]
    fn new_nodes_in_setgid_directories() {
        assert_eq!(new_owner(0o755, 7, false, 0o644, &ALICE), (1000, 0o644));
        assert_eq!(new_owner(0o2775, 7, false, 0o644, &ALICE), (7, 0o644));
        assert_eq!(new_owner(0o2775, 7, true, 0o755, &ALICE), (7, 0o2755));
        assert_eq!(new_owner(0o2775, 7, false, 0o2755, &ALICE), (7, 0o755));
        assert_eq!(new_owner(0o2775, 50, false, 0o2755, &ALICE), (50, 0o2755));
        assert_eq!(new_owner(0o2775, 7, false, 0o2755, &ROOT), (7, 0o2755));
    }
}
