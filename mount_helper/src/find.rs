//! Which file system types exist and where their binaries are.
//!
//! The binary for type `memfs` is an executable named `memfs`, searched in:
//! the `--fs-dir` directory, `$PUFFS_FS_DIR`, each directory of `$PATH`, and
//! last the directory holding mount_puffs itself, so that a plain
//! `cargo build` can mount every example without installing anything.
//!
//! Only puffs types are run: the built-in list plus any named in
//! `$PUFFS_TYPES`. Otherwise `-t ls` would run whatever `ls` is on the PATH
//! with mount arguments.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{HelperError, Result};

/// The example file systems of this project: the binaries of fs-examples
/// (a test keeps the two, and docs/mount_helper.md, in step).
pub const KNOWN_TYPES: &[&str] = &["hellofs", "memfs", "nullfs", "rot13fs", "sftpfs"];

/// Environment variable naming extra file system types (comma or colon
/// separated), for file systems written outside this project.
pub const TYPES_ENV: &str = "PUFFS_TYPES";

/// Environment variable naming a directory searched before `$PATH`.
pub const FS_DIR_ENV: &str = "PUFFS_FS_DIR";

/// All types mount_puffs will run: the known ones and `$PUFFS_TYPES`.
pub fn puffs_types() -> Vec<String> {
    let extra = env::var(TYPES_ENV).unwrap_or_default();
    let mut types: Vec<String> = KNOWN_TYPES.iter().map(|t| t.to_string()).collect();
    for t in extra.split([',', ':']).filter(|t| is_valid_type_name(t)) {
        if !types.iter().any(|known| known == t) {
            types.push(t.to_string());
        }
    }
    types
}

/// A type name is a plain word, so it can never name a path.
pub fn is_valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The directories searched for file system binaries, in order.
pub fn search_dirs(fs_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs_dir.map(Path::to_path_buf).into_iter().collect();
    if let Some(dir) = env::var_os(FS_DIR_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()));
    }
    if let Some(own) = own_dir() {
        dirs.push(own);
    }
    dirs
}

/// The directory of the running mount_puffs, symlinks resolved: when
/// mount(8) runs /sbin/mount.puffs.memfs, this is where the build put it.
fn own_dir() -> Option<PathBuf> {
    let exe = env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent().map(Path::to_path_buf)
}

/// The binary for `fstype`, first found in `dirs`.
pub fn find_binary(fstype: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|dir| dir.join(fstype))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The puffs types whose binaries can be found in `dirs`.
pub fn available_types(dirs: &[PathBuf]) -> Vec<String> {
    puffs_types()
        .into_iter()
        .filter(|t| find_binary(t, dirs).is_some())
        .collect()
}

/// Checks `fstype` and finds its binary; the error for an unknown or
/// missing type lists the types that can be mounted.
pub fn resolve(fstype: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    let known = puffs_types().iter().any(|t| t == fstype);
    if !known {
        return Err(HelperError::usage(format!(
            "unknown file system type '{fstype}'{}",
            available_list(dirs)
        )));
    }
    find_binary(fstype, dirs).ok_or_else(|| {
        HelperError::failed(format!(
            "no '{fstype}' binary found in {}{}",
            describe_dirs(dirs),
            available_list(dirs)
        ))
    })
}

fn available_list(dirs: &[PathBuf]) -> String {
    match available_types(dirs).as_slice() {
        [] => "; no puffs file system binaries found".to_string(),
        types => format!("; available types: {}", types.join(", ")),
    }
}

fn describe_dirs(dirs: &[PathBuf]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_plain_words() {
        assert!(is_valid_type_name("memfs"));
        assert!(is_valid_type_name("my_fs-2"));
        for bad in ["", "../bin/sh", "a/b", "fuse.memfs", "a b"] {
            assert!(!is_valid_type_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn known_types_are_puffs_types() {
        let types = puffs_types();
        for t in KNOWN_TYPES {
            assert!(types.iter().any(|x| x == t));
        }
    }

    /// The `[[bin]]` names of fs-examples/Cargo.toml.
    fn example_binaries() -> Vec<String> {
        let manifest = include_str!("../../fs-examples/Cargo.toml");
        let mut names: Vec<String> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|section| {
                let line = section
                    .lines()
                    .find(|l| l.trim_start().starts_with("name"))?;
                Some(line.split('"').nth(1)?.to_string())
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn known_types_are_the_example_binaries() {
        let mut known: Vec<String> = KNOWN_TYPES.iter().map(|t| t.to_string()).collect();
        known.sort();
        assert_eq!(known, example_binaries(), "update KNOWN_TYPES");
    }

    /// docs/mount_helper.md names exactly the types that exist, in its
    /// "Only puffs types are run:" sentence.
    #[test]
    fn manual_lists_the_known_types() {
        let manual = include_str!("../../docs/mount_helper.md").replace('\n', " ");
        let (_, rest) = manual
            .split_once("Only puffs types are run:")
            .expect("the manual's list of types");
        let (list, _) = rest
            .split_once("and any named in")
            .expect("end of the list");
        let mut listed: Vec<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        listed.sort();
        assert_eq!(listed, example_binaries(), "update docs/mount_helper.md");
    }

    #[test]
    fn finds_only_executables() {
        let dir = std::env::temp_dir().join(format!("mount_puffs-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("memfs");
        let plain = dir.join("hellofs");
        std::fs::write(&exe, "").unwrap();
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dirs = vec![dir.clone()];
        assert_eq!(find_binary("memfs", &dirs), Some(exe));
        assert_eq!(find_binary("hellofs", &dirs), None);
        assert_eq!(available_types(&dirs), vec!["memfs".to_string()]);
        let err = resolve("bogus", &dirs).unwrap_err();
        assert!(err.message.contains("'bogus'"), "{}", err.message);
        assert!(err.message.contains("memfs"), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fs_dir_comes_first() {
        let dirs = search_dirs(Some(Path::new("/opt/puffs")));
        assert_eq!(dirs[0], PathBuf::from("/opt/puffs"));
    }
}
