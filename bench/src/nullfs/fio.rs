//! fio 4 KiB random reads on the mount: libaio and io_uring engines, queue depth 1 and 32.
//!
//! The four main jobs run with `direct=1`. Buffered I/O does not give libaio any queue depth:
//! io_submit on a buffered file does the read inline (the submitting thread waits, so QD32 is
//! QD1). io_uring on a buffered FUSE file hands each read that misses the page cache to its
//! io-wq worker threads (FUSE has no non-blocking buffered read), so it does reach depth, but
//! through those workers; the two `_buf` jobs measure that, after `sync; drop_caches`, each
//! page read at most once over a quarter of the file (a bounded number of reads, not a time:
//! random reads over a cached file would measure the page cache), and they
//! are the only fio figures for a nullfs backend that cannot serve O_DIRECT opens. With
//! O_DIRECT, FUSE (which negotiates
//! FUSE_ASYNC_DIO) sends each read to the daemon as it is submitted, so up to 32 READs are in
//! flight at the daemon, and nullfs opens its backing file O_DIRECT too, so the depth reaches
//! its aio backend: that is where io_uring and kernel AIO can overlap them and POSIX AIO (glibc
//! serves one fd's requests one at a time) cannot. Buffered 4 KiB random reads at QD1 are the
//! seq group's rand_read_cold/warm.
//!
//! The `posixaio` jobs show glibc's POSIX AIO from the application side: glibc serves the
//! requests of one fd one at a time, so queue depth 32 on one file gains nothing over 1 (on
//! native as on any mount); the same holds for nullfs's aio=posix backend on its backing fd.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{fsync, write};

use crate::workloads::{check_interrupt, drop_caches, workdir, Sample};

/// The jobs: metric name, engine, queue depth, O_DIRECT.
pub const JOBS: [(&str, &str, usize, bool); 8] = [
    ("fio_libaio_qd1", "libaio", 1, true),
    ("fio_libaio_qd32", "libaio", 32, true),
    ("fio_uring_qd1", "io_uring", 1, true),
    ("fio_uring_qd32", "io_uring", 32, true),
    ("fio_posixaio_qd1", "posixaio", 1, true),
    ("fio_posixaio_qd32", "posixaio", 32, true),
    ("fio_uring_qd1_buf", "io_uring", 1, false),
    ("fio_uring_qd32_buf", "io_uring", 32, false),
];

/// Lays out a `mib` MiB file (not timed), then runs each job for `secs` seconds. Samples are
/// IOPS (higher is better); a job that fails is reported in the second list and the others
/// still run.
pub fn run(mount: &Path, mib: usize, secs: usize) -> Result<(Vec<Sample>, Vec<String>), String> {
    let dir = workdir(mount)?;
    let name = CString::new("fio.dat").expect("no NUL");
    let fd = openat(
        &dir,
        name.as_c_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| format!("create fio.dat: {e}"))?;
    let block = vec![0x5au8; 1 << 20];
    for b in 0..mib {
        check_interrupt(b)?;
        let mut rest = &block[..];
        while !rest.is_empty() {
            let n = write(fd.as_fd(), rest).map_err(|e| format!("write fio.dat: {e}"))?;
            rest = &rest[n..];
        }
    }
    fsync(fd.as_fd()).map_err(|e| format!("fsync fio.dat: {e}"))?;
    drop(fd);
    let file = mount.join("d/fio.dat");
    let (mut out, mut failed) = (Vec::new(), Vec::new());
    for (metric, engine, depth, direct) in JOBS {
        check_interrupt(0)?;
        if !direct {
            drop_caches()?;
        }
        match job(&file, mib, engine, depth, direct, secs) {
            Ok(iops) => out.push((metric, iops)),
            Err(e) => failed.push(format!("{metric}: {e}")),
        }
    }
    Ok((out, failed))
}

fn job(
    file: &Path,
    mib: usize,
    engine: &str,
    depth: usize,
    direct: bool,
    secs: usize,
) -> Result<f64, String> {
    let mut cmd = Command::new("fio");
    cmd.arg("--name=randread")
        .arg(format!("--filename={}", file.display()))
        .args(["--rw=randread", "--bs=4k", "--numjobs=1", "--invalidate=0"])
        .arg(format!("--direct={}", u8::from(direct)))
        .arg(format!("--size={mib}M"))
        .arg(format!("--ioengine={engine}"))
        .arg(format!("--iodepth={depth}"))
        .arg("--randrepeat=1")
        .arg("--output-format=json");
    if direct {
        cmd.args(["--time_based", "--norandommap"])
            .arg(format!("--runtime={secs}"));
    } else {
        // Each page at most once (fio's random map) over a quarter of the file, so the
        // page cache the job itself fills does not answer later reads.
        cmd.arg(format!("--io_size={}M", mib.div_ceil(4)))
            .arg(format!("--runtime={}", secs * 4));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("run fio: {e} (apt-get install fio)"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "fio exited with {}: {}",
            out.status,
            stderr.lines().next().unwrap_or("").trim()
        ));
    }
    read_iops(&stdout)
}

/// The read IOPS of the first job in fio's `--output-format=json` output (anything fio
/// printed before the JSON object is skipped). A job error or no reads is an error.
pub fn read_iops(json: &str) -> Result<f64, String> {
    let start = json.find('{').ok_or("no JSON in fio's output")?;
    let json = &json[start..];
    let jobs = after_key(json, "jobs").ok_or("fio JSON: no \"jobs\"")?;
    if let Some(err) = after_key(jobs, "error").and_then(number) {
        if err != 0.0 {
            return Err(format!("fio job error {err}"));
        }
    }
    let read = after_key(jobs, "read").ok_or("fio JSON: no \"read\" in the job")?;
    if !read.starts_with('{') {
        return Err("fio JSON: \"read\" is not an object".into());
    }
    let iops = after_key(read, "iops")
        .and_then(number)
        .ok_or("fio JSON: no read \"iops\"")?;
    let ios = after_key(read, "total_ios").and_then(number);
    if iops <= 0.0 || ios == Some(0.0) {
        return Err("fio did no reads".into());
    }
    Ok(iops)
}

/// The text right after `"key" :` (whitespace skipped), for the first occurrence of the key
/// as an object key (a quoted string followed by a colon, not a value).
fn after_key<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = s[from..].find(&quoted) {
        let rest = s[from + i + quoted.len()..].trim_start();
        if let Some(v) = rest.strip_prefix(':') {
            return Some(v.trim_start());
        }
        from += i + quoted.len();
    }
    None
}

/// The JSON number at the start of `s`.
fn number(s: &str) -> Option<f64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(s.len());
    s[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from fio 3.33's real output.
    const OUTPUT: &str = r#"note: both iodepth >= 1 and synchronous I/O engine selected
{
  "fio version" : "fio-3.33",
  "global options" : { "rw" : "read" },
  "jobs" : [
    {
      "jobname" : "randread",
      "error" : 0,
      "job options" : { "rw" : "randread", "bs" : "read" },
      "read" : {
        "io_bytes" : 52613120,
        "bw" : 17128,
        "iops" : 4282.258591,
        "runtime" : 3000,
        "total_ios" : 12845,
        "clat_ns" : { "mean" : 232.5 }
      },
      "write" : { "iops" : 0.000000, "total_ios" : 0 }
    }
  ]
}"#;

    #[test]
    fn reads_the_jobs_read_iops() {
        assert_eq!(read_iops(OUTPUT).unwrap(), 4282.258591);
    }

    #[test]
    fn a_failed_or_empty_job_is_an_error() {
        let failed = OUTPUT.replace("\"error\" : 0", "\"error\" : 5");
        assert!(read_iops(&failed).unwrap_err().contains("error 5"));
        let none = OUTPUT
            .replace("4282.258591", "0.000000")
            .replace("12845", "0");
        assert!(read_iops(&none).is_err());
        assert!(read_iops("fio: engine libaio not loadable").is_err());
        assert!(read_iops("{\"jobs\" : []}").is_err());
    }

    #[test]
    fn keys_are_not_confused_with_values() {
        assert_eq!(
            after_key(r#"{"a" : "read", "read": 7}"#, "read"),
            Some("7}")
        );
        assert_eq!(number("1.5e3,"), Some(1500.0));
        assert_eq!(number("x"), None);
    }
}
