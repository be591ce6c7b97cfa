//! `puffs-bench --suite sftpfs`: sftpfs against Debian's sshfs, both running the same local
//! OpenSSH sftp-server through the same delay relay (bench/src/bin/sftp-relay.rs) as their ssh
//! command, at several one-way delays. Interleaved rounds (the starting file system alternates),
//! a fresh mount per run, medians and speed ratios, PASS/FAIL against issue 10's targets.
//! See docs/performance.md, "sftpfs vs sshfs".

mod config;
mod mount;
mod sshd;
mod verdict;
mod work;

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use config::Config;
use mount::{Fs, Transport};
use verdict::Samples;

/// Runs the suite if the arguments ask for it (`--suite sftpfs` first); None otherwise.
pub fn main_if_selected() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = match args.first().map(String::as_str) {
        Some("--suite=sftpfs") => &args[1..],
        Some("--suite") if args.get(1).map(String::as_str) == Some("sftpfs") => &args[2..],
        _ => return None,
    };
    Some(match config::parse(rest).and_then(|c| run(&c)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("puffs-bench: {e}");
            ExitCode::from(2)
        }
    })
}

/// Runs every delay; true when every run succeeded (targets missed are reported, not fatal).
fn run(c: &Config) -> Result<bool, String> {
    config::preflight(c)?;
    fs::create_dir_all(&c.dir).map_err(|e| format!("mkdir {}: {e}", c.dir.display()))?;
    let remote = c.dir.join("remote");
    // Kept alive (and killed on drop) for the whole run.
    let sshd = match c.ssh {
        true => Some(sshd::Sshd::start(&c.dir.join("sshd"), &c.server)?),
        false => None,
    };
    let server_argv = match &sshd {
        Some(d) => d.argv(),
        None => vec![c.server.to_string_lossy().into_owned()],
    };
    let sftpfs_opts = match (c.connections, &c.sftpfs_opts) {
        (Some(n), Some(o)) => Some(format!("connections={n},{o}")),
        (Some(n), None) => Some(format!("connections={n}")),
        (None, o) => o.clone(),
    };
    let t = Transport {
        relay: c.relay.clone(),
        server_argv,
        sshd_port: sshd.as_ref().map(|d| d.port),
        sftpfs: c.sftpfs.clone(),
        sftpfs_opts,
        sshfs_opts: c.sshfs_opts.clone(),
        remote: remote.clone(),
        base: c.dir.clone(),
    };
    let entries = work::make_list_tree(&remote.join("list"), c.list_entries)?;
    let mut ok = true;
    let mut all = Vec::new();
    println!(
        "transport: {} through sftp-relay",
        if c.ssh {
            "ssh to a private sshd on 127.0.0.1, its TCP connection"
        } else {
            "the sftp-server run directly"
        }
    );
    for &delay in &c.delays {
        let mut s = Samples::default();
        for round in 0..c.rounds {
            // Alternate who goes first so drift on the shared machine hits both alike.
            let mut order = c.fses.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for fs in order {
                eprintln!("puffs-bench: {delay} ms, round {}, {fs}", round + 1);
                if let Err(e) = run_one(&t, c, fs, delay, &mut s) {
                    eprintln!("puffs-bench: {delay} ms {fs}: {e}");
                    s.errors.push(format!("{delay} ms {fs}: {e}"));
                    ok = false;
                }
            }
        }
        print!("{}", verdict::table(&s, delay, c, entries));
        print!("{}", verdict::window_line(&s, delay, c));
        all.push((delay, s));
    }
    let verdicts = verdict::verdicts(&all, c);
    print!("{}", verdict::verdict_table(&verdicts));
    println!("{}", verdict::json(&all, &verdicts, c));
    drop(sshd);
    clean_up(&c.dir, &c.delays);
    Ok(ok)
}

/// Removes what the run made in `dir` (everything is unmounted by now), then `dir` if empty.
fn clean_up(dir: &Path, delays: &[u64]) {
    let _ = fs::remove_dir_all(dir.join("remote"));
    let _ = fs::remove_dir_all(dir.join("sshd"));
    for f in Fs::ALL {
        let _ = fs::remove_dir(dir.join(format!("mnt-{f}")));
    }
    for d in delays {
        let _ = fs::remove_file(dir.join(format!("server-{d}ms.sh")));
    }
    let _ = fs::remove_dir(dir);
}

/// One fresh mount: the cold listing first, then write, read, create and copy in a fresh
/// work directory, which is removed on the backing side afterwards.
fn run_one(t: &Transport, c: &Config, fs: Fs, delay: u64, s: &mut Samples) -> Result<(), String> {
    let work_remote = t.remote.join("work");
    if work_remote.exists() {
        fs::remove_dir_all(&work_remote).map_err(|e| format!("clean work dir: {e}"))?;
    }
    fs::create_dir(&work_remote).map_err(|e| format!("mkdir work dir: {e}"))?;
    let m = t.mount(fs, delay)?;
    let result = workloads(m.path(), c, fs, s);
    let unmounted = m.unmount();
    let _ = fs::remove_dir_all(&work_remote);
    result.and(unmounted)
}

fn workloads(mnt: &Path, c: &Config, fs: Fs, s: &mut Samples) -> Result<(), String> {
    s.add("rtt", fs, work::round_trip(mnt)?);
    s.add("list", fs, work::list(&mnt.join("list"))?);
    let work = mnt.join("work");
    let big = work.join("seq");
    s.add("seq_write", fs, work::seq_write(&big, c.seq_mib)?);
    s.add("seq_read", fs, work::seq_read(&big, c.seq_mib)?);
    s.add("create", fs, work::create(&work.join("small"), c.files)?);
    s.add(
        "copy_tree",
        fs,
        work::copy_tree(&c.tree, &work.join("tree"))?,
    );
    Ok(())
}
