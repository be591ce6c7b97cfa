//! docs/writing-a-filesystem.md compiles as written: its code blocks, copied out the
//! way the page says (a `toml` block is Cargo.toml; a Rust block whose first line is
//! `// src/FILE.rs` goes to that file; other Rust blocks go to src/main.rs; blocks of
//! one file follow each other with a blank line between), make a crate that builds
//! outside the workspace, is the same program as fs-examples/hellofs, and mounts to
//! show what the real hellofs shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use puffs_tests::*;

const TUTORIAL: &str = "docs/writing-a-filesystem.md";
/// The tutorial's files that fs-examples/hellofs holds, by the name they have there.
const HELLOFS_FILES: &[(&str, &str)] = &[
    ("src/main.rs", "fs-examples/hellofs/main.rs"),
    ("src/fs.rs", "fs-examples/hellofs/fs.rs"),
];
/// A cold build of the crate and its dependencies; a warm one takes seconds.
const BUILD_BOUND: Duration = Duration::from_secs(600);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files the page's code blocks make, by path in the crate.
fn extract(page: &str) -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            continue;
        };
        let mut block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let file = match lang.trim() {
            "toml" => "Cargo.toml".to_string(),
            "rust" => match block.first().and_then(|l| file_marker(l)) {
                Some(f) => {
                    block.remove(0);
                    f
                }
                None => "src/main.rs".to_string(),
            },
            _ => continue,
        };
        let mut text = block.join("\n");
        text.push('\n');
        files.entry(file).or_default().push(text);
    }
    files.into_iter().map(|(f, b)| (f, b.join("\n"))).collect()
}

/// `// src/fs.rs` names the file a block goes to.
fn file_marker(line: &str) -> Option<String> {
    let f = line.strip_prefix("// ")?.trim();
    (f.starts_with("src/") && f.ends_with(".rs") && !f.contains(' ')).then(|| f.to_string())
}

/// The `repository` of the workspace's package metadata.
fn repository() -> String {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("repository = "))
        .expect("workspace Cargo.toml names the repository");
    line.split('"').nth(1).unwrap().to_string()
}

/// The tutorial's Cargo.toml with its git dependency pointed at this checkout by path.
fn local_manifest(toml: &str) -> String {
    let git_line = format!("libpuffs = {{ git = \"{}\" }}", repository());
    assert!(
        toml.lines().any(|l| l == git_line),
        "{TUTORIAL}: the Cargo.toml block should depend on `{git_line}` (the repository)"
    );
    assert!(
        toml.contains("libpuffs = { path = "),
        "{TUTORIAL}: the Cargo.toml block should show the path form too"
    );
    let path_line = format!(
        "libpuffs = {{ path = \"{}\" }}",
        workspace().join("libpuffs").display()
    );
    toml.replace(&git_line, &path_line)
}

/// Writes the crate into `dir`, with the workspace's Cargo.lock so the versions are
/// the ones the workspace is tested with.
fn write_crate(dir: &Path, files: &BTreeMap<String, String>) {
    for (name, text) in files {
        let text = match name.as_str() {
            "Cargo.toml" => local_manifest(text),
            _ => text.clone(),
        };
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

/// Builds the crate in `dir` (its own target dir under the workspace's, kept between
/// runs so only the first build is slow) and returns the binary's path.
fn build(dir: &Path) -> PathBuf {
    let target = workspace().join("target/tutorial");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let out = run_bounded(
        Command::new(cargo)
            .args(["build", "--offline", "--quiet", "--target-dir"])
            .arg(&target)
            // No debug info and no incremental state: the build is checked, not
            // debugged, and a cold one (CI) is what takes the time.
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .env("CARGO_INCREMENTAL", "0")
            .current_dir(dir),
        BUILD_BOUND,
    );
    assert!(
        out.status.success(),
        "the tutorial's crate does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("tutorial crate built in {:?}", started.elapsed());
    target.join("debug/hellofs")
}

/// `ls -ls` of a mount with the times left out (they are each mount's own).
fn ls(dir: &Path) -> String {
    let out = Command::new("ls")
        .args(["-ls", "--time-style=+"])
        .arg(dir)
        .output()
        .expect("ls");
    assert!(out.status.success(), "ls {}", dir.display());
    String::from_utf8(out.stdout).unwrap()
}

/// Mounts the binary at `bin` on a fresh mount point, as a user would (daemonized).
fn mount(bin: &Path) -> MountPoint {
    let mnt = MountPoint::new();
    let out = run_bounded(Command::new(bin).arg(mnt.path()), Duration::from_secs(20));
    assert!(
        out.status.success(),
        "the tutorial's hellofs failed to mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(mnt.path()), "exited 0 but nothing is mounted");
    mnt
}

#[test]
fn tutorial_blocks_are_hellofs() {
    let page = std::fs::read_to_string(workspace().join(TUTORIAL)).unwrap();
    let files = extract(&page);
    let names: Vec<_> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["Cargo.toml", "src/fs.rs", "src/main.rs"]);
    for (name, real) in HELLOFS_FILES {
        let real_text = std::fs::read_to_string(workspace().join(real)).unwrap();
        assert!(
            files[*name] == real_text,
            "{TUTORIAL}'s {name} differs from {real}: change both together\n\
             --- from the tutorial ---\n{}",
            files[*name]
        );
    }
}

#[test]
fn tutorial_builds_outside_the_workspace_and_lists_like_hellofs() {
    let page = std::fs::read_to_string(workspace().join(TUTORIAL)).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("puffs-tutorial-")
        .tempdir()
        .unwrap();
    assert!(
        !dir.path().starts_with(workspace()),
        "the crate must be outside the workspace"
    );
    write_crate(dir.path(), &extract(&page));
    let tutorial_bin = build(dir.path());

    require_fuse!();
    let real = Mounted::new("hellofs", "");
    let tutorial = mount(&tutorial_bin);
    let listing = ls(tutorial.path());
    assert_eq!(listing, ls(real.path()), "ls -ls of the tutorial's mount");
    assert!(
        listing.contains(" -r--r--r-- 1 root root 14  hello"),
        "unexpected listing:\n{listing}"
    );
    let read = |m: &Path| std::fs::read(m.join("hello")).unwrap();
    assert_eq!(read(tutorial.path()), b"Hello, world!\n");
    assert_eq!(read(tutorial.path()), read(real.path()));
}
