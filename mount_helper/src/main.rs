//! mount_puffs: mounts puffs file systems and returns once the mount is up;
//! also unmounts and lists them. Installed as mount.puffs (or
//! mount.puffs.TYPE) it is the helper that mount(8) and /etc/fstab use.
//! The manual is docs/mount_helper.md.

mod args;
mod error;
mod find;
mod links;
mod list;
mod lock;
mod mountinfo;
mod mountpoint;
mod namespace;
mod procs;
mod run;
mod unmount;

use std::path::Path;

use args::{Action, Invocation};
use error::Result;

fn main() {
    let argv: Vec<_> = std::env::args_os().collect();
    let prog = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map_or("mount_puffs".into(), |n| n.to_string_lossy().into_owned());
    let outcome = args::parse(argv).and_then(perform);
    if let Err(e) = outcome {
        eprintln!("{prog}: {e}");
        std::process::exit(e.code);
    }
}

fn perform(inv: Invocation) -> Result<()> {
    let verbose = inv.verbose;
    match inv.action {
        Action::Mount(req) => run::mount(&req, verbose),
        Action::Unmount { mountpoint, lazy } => unmount::unmount(&mountpoint, lazy, verbose),
        Action::List => list::list(),
        Action::InstallLinks { dir, types } => links::install_links(&dir, &types, verbose),
        Action::Info(text) => {
            println!("{}", text.trim_end());
            Ok(())
        }
    }
}

/// Verbose output goes to stderr, so that stdout stays for -l.
fn say(verbose: bool, what: &str) {
    if verbose {
        eprintln!("mount_puffs: {what}");
    }
}
