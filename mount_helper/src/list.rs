//! `mount_puffs -l`: the puffs mounts, with the process serving each.
//!
//! A puffs mount is a FUSE mount of type fuse.TYPE where TYPE is a puffs
//! type (find::puffs_types); the file systems mount with subtype=TYPE and
//! fsname=SOURCE, so both show in the table. The pid is found as described
//! in procs.rs, and shown as '-' when it is not found.

use crate::error::Result;
use crate::find::puffs_types;
use crate::mountinfo::MountEntry;
use crate::mountpoint::read_table;
use crate::procs::{fs_pid, processes, Proc};

pub fn list() -> Result<()> {
    let types = puffs_types();
    let mounts: Vec<MountEntry> = read_table()?
        .into_iter()
        .filter(|m| {
            m.fuse_subtype()
                .is_some_and(|t| types.iter().any(|x| x == t))
        })
        .collect();
    let procs = processes();
    print!("{}", format_rows(&mounts, &procs));
    Ok(())
}

fn format_rows(mounts: &[MountEntry], procs: &[Proc]) -> String {
    let mut rows = vec![[
        "TYPE".to_string(),
        "SOURCE".into(),
        "MOUNTPOINT".into(),
        "PID".into(),
    ]];
    // Mounts stacked on one mount point come lowest first in the table; each
    // takes the earliest started process not already given to one below.
    let mut taken = Vec::new();
    for m in mounts {
        let fstype = m.fuse_subtype().unwrap_or("");
        let pid = fs_pid(procs, fstype, &m.target, &taken);
        taken.extend(pid);
        let pid = pid.map_or("-".to_string(), |p| p.to_string());
        rows.push([
            fstype.to_string(),
            m.source.clone(),
            m.target.display().to_string(),
            pid,
        ]);
    }
    let width = |col: usize| rows.iter().map(|r| r[col].len()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    rows.iter()
        .map(|r| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn rows_are_aligned_and_show_pids() {
        let mounts = [MountEntry {
            source: "none".into(),
            target: "/tmp/m".into(),
            fstype: "fuse.memfs".into(),
        }];
        let procs = [Proc {
            pid: 42,
            argv: ["/bin/memfs", "none", "/tmp/m"]
                .map(OsString::from)
                .to_vec(),
            cwd: None,
            start: 1,
        }];
        let text = format_rows(&mounts, &procs);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "TYPE   SOURCE  MOUNTPOINT  PID");
        assert_eq!(lines[1], "memfs  none    /tmp/m      42");
        assert!(format_rows(&mounts, &[]).ends_with("-\n"));
    }
}
