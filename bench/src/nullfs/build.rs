//! The build-like mixed workload: what a developer's tree does to a file system.
//!
//! 1. `build_write`: write a small C project (`sources` .c files, a header per four of them,
//!    a Makefile), as an untar would;
//! 2. `build_make`: `make -j2` (compiler reads, object writes, many stats), then the program
//!    runs and its output is checked, so a build that read wrong bytes fails;
//! 3. `git_add`: `git init; git add -A` over a generated tree of `git_files` files in
//!    directories of 50 (reads every file, writes the object store);
//! 4. `git_status_cold` after `sync; drop_caches`, and `git_status_warm`: a stat walk of the
//!    whole tree, and the porcelain output must list every file.
//!
//! Everything is generated deterministically, so every target and round does the same work.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::workloads::{check_interrupt, drop_caches, timed, Sample};

/// Sources per header.
const PER_HEADER: usize = 4;
const PER_DIR: usize = 50;

fn header_name(j: usize) -> String {
    format!("h{j:03}.h")
}

/// Source `i`: a function of its own, with enough code that compiling it is not free.
fn source(i: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#include \"{}\"", header_name(i / PER_HEADER));
    let _ = writeln!(s, "#include <stdlib.h>\n#include <string.h>\n");
    let _ = writeln!(s, "struct s{i} {{ long a[8]; char name[32]; }};\n");
    let _ = writeln!(s, "static long helper{i}(const struct s{i} *p) {{");
    let _ = writeln!(
        s,
        "    long t = 0;\n    for (int k = 0; k < 8; k++) t += p->a[k] * (k + 1);"
    );
    let _ = writeln!(s, "    return t + (long)strlen(p->name);\n}}\n");
    let _ = writeln!(s, "long f{i}(long x) {{");
    let _ = writeln!(s, "    struct s{i} v;\n    memset(&v, 0, sizeof v);");
    let _ = writeln!(s, "    v.a[0] = x * {};\n    v.a[1] = {i};", i + 1);
    let _ = writeln!(s, "    return helper{i}(&v) - 2 * {i} + {i};\n}}");
    s
}

fn header(j: usize, sources: usize) -> String {
    let mut s = format!("#ifndef H{j}\n#define H{j}\n");
    for i in (j * PER_HEADER..(j + 1) * PER_HEADER).filter(|i| *i < sources) {
        let _ = writeln!(s, "long f{i}(long x);");
    }
    s.push_str("#endif\n");
    s
}

fn main_c(sources: usize) -> String {
    let mut s = String::from("#include <stdio.h>\n");
    for j in 0..sources.div_ceil(PER_HEADER) {
        let _ = writeln!(s, "#include \"{}\"", header_name(j));
    }
    s.push_str("int main(void) {\n    long sum = 0;\n");
    for i in 0..sources {
        let _ = writeln!(s, "    sum += f{i}({i});");
    }
    s.push_str("    printf(\"%ld\\n\", sum);\n    return 0;\n}\n");
    s
}

/// What the built program prints: f_i(i) = i*(i+1) + 2*i - 2*i + i.
fn expected_output(sources: usize) -> String {
    let sum: u64 = (0..sources as u64).map(|i| i * (i + 1) + i).sum();
    format!("{sum}\n")
}

const MAKEFILE: &str = "\
SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:.c=.o)
prog: $(OBJS)
\t$(CC) -o $@ $^
src/%.o: src/%.c
\t$(CC) -O1 -Iinclude -c -o $@ $<
";

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))
}

fn write_project(p: &Path, sources: usize) -> Result<(), String> {
    mkdir(&p.join("src"))?;
    mkdir(&p.join("include"))?;
    write(&p.join("Makefile"), MAKEFILE)?;
    for j in 0..sources.div_ceil(PER_HEADER) {
        write(&p.join("include").join(header_name(j)), &header(j, sources))?;
    }
    for i in 0..sources {
        check_interrupt(i)?;
        write(&p.join(format!("src/c{i:04}.c")), &source(i))?;
    }
    write(&p.join("src/main.c"), &main_c(sources))
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// git with no system or user configuration, so nothing on the machine changes its work.
fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"]);
    c
}

fn git_tree(g: &Path, files: usize) -> Result<(), String> {
    for i in 0..files {
        check_interrupt(i)?;
        let d = g.join(format!("d{:03}", i / PER_DIR));
        if i % PER_DIR == 0 {
            mkdir(&d)?;
        }
        let body = format!("file {i}\n").repeat(1 + i % 97);
        write(&d.join(format!("f{i:05}.txt")), &body)?;
    }
    Ok(())
}

fn status_lists_all(g: &Path, files: usize) -> Result<(), String> {
    let out = run(git(g).args(["status", "--porcelain"]), "git status")?;
    let added = out.lines().filter(|l| l.starts_with("A ")).count();
    if added != files {
        return Err(format!("git status: {added} files added, expected {files}"));
    }
    Ok(())
}

pub fn run_all(mount: &Path, sources: usize, git_files: usize) -> Result<Vec<Sample>, String> {
    let p = mount.join("proj");
    let write = timed(|| write_project(&p, sources)).map_err(|e| format!("build_write: {e}"))?;
    let make = timed(|| {
        run(
            Command::new("make").args(["-s", "-j2"]).current_dir(&p),
            "make -j2",
        )?;
        let got = run(&mut Command::new(p.join("prog")), "run prog")?;
        if got != expected_output(sources) {
            return Err(format!(
                "prog printed {got:?}, expected {:?}",
                expected_output(sources)
            ));
        }
        Ok(())
    })
    .map_err(|e| format!("build_make: {e}"))?;
    let g = mount.join("tree");
    mkdir(&g)?;
    git_tree(&g, git_files)?;
    let add = timed(|| {
        run(git(&g).args(["init", "-q"]), "git init")?;
        run(git(&g).args(["add", "-A"]), "git add").map(drop)
    })
    .map_err(|e| format!("git_add: {e}"))?;
    drop_caches()?;
    let cold =
        timed(|| status_lists_all(&g, git_files)).map_err(|e| format!("git_status_cold: {e}"))?;
    let warm =
        timed(|| status_lists_all(&g, git_files)).map_err(|e| format!("git_status_warm: {e}"))?;
    Ok(vec![
        ("build_write", write),
        ("build_make", make),
        ("git_add", add),
        ("git_status_cold", cold),
        ("git_status_warm", warm),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated project really builds and prints what `expected_output` says (needs cc
    /// and make, skipped without them; no FUSE involved).
    #[test]
    fn generated_project_builds_and_prints_the_expected_sum() {
        if Command::new("make").arg("--version").output().is_err()
            || Command::new("cc").arg("--version").output().is_err()
        {
            eprintln!("skipped: no make or cc");
            return;
        }
        let dir = std::env::temp_dir().join(format!("puffs-bench-build-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write_project(&dir, 9).unwrap();
        run(
            Command::new("make").args(["-s", "-j2"]).current_dir(&dir),
            "make",
        )
        .unwrap();
        let got = run(&mut Command::new(dir.join("prog")), "prog").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, expected_output(9));
    }
}
