//! memfs: `memfs [-f] [-d] [-o opt[,opt...]] [SOURCE] MOUNTPOINT` mounts a file system
//! that lives in memory and behaves like tmpfs (sparse files, hard links, xattrs,
//! `size=` and `inodes=` limits).

mod config;
mod data;
mod dir;
mod fs;
mod heap;
mod inode;
mod perm;
mod space;
mod xattr;

use puffs::PuffsUserMount;

use config::Config;

fn main() {
    heap::configure();
    let args = puffs::cli::Args::parse(
        "memfs",
        "A file system in memory, like tmpfs.",
        config::OPTIONS,
    );
    puffs::init_logging(args.debug);
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let config =
        Config::from_options(&args.options, config::mem_total(), uid, gid).unwrap_or_else(|e| {
            eprintln!("memfs: {e}");
            std::process::exit(1);
        });
    let source = args.source.clone().unwrap_or_else(|| "memfs".into());
    if let Err(e) = run(&args, &config, &source) {
        eprintln!("memfs: {e}");
        std::process::exit(1);
    }
}

fn run(args: &puffs::cli::Args, config: &Config, source: &str) -> Result<(), puffs::Error> {
    let pu = PuffsUserMount::new(fs::MemFs::new(config), "memfs", source)
        .options(&args.options)
        .default_permissions(true);
    let pu = if args.foreground { pu } else { pu.daemon()? };
    pu.mount(&args.mountpoint)?.mainloop()
}
