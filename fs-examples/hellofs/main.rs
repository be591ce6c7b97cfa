//! hellofs: `hellofs [-f] [-d] [-o opts] MOUNTPOINT` mounts a file system whose only
//! file, /hello, says hello.

mod fs;

use puffs::PuffsUserMount;

fn main() {
    let args = puffs::cli::Args::parse(
        "hellofs",
        "A read-only file system with one file, /hello.",
        &[],
    );
    puffs::init_logging(args.debug);
    let source = args.source.clone().unwrap_or_else(|| "hellofs".into());
    if let Err(e) = run(&args, &source) {
        eprintln!("hellofs: {e}");
        std::process::exit(1);
    }
}

fn run(args: &puffs::cli::Args, source: &str) -> Result<(), puffs::Error> {
    let pu = PuffsUserMount::new(fs::Hello::new(), "hellofs", source)
        .options(&args.options) // -o ro,attr_timeout=...,fsname=...
        .read_only(true);
    // The parent exits 0 once the mount is up; the child goes on.
    let pu = if args.foreground { pu } else { pu.daemon()? };
    let mounted = pu.mount(&args.mountpoint)?; // returns after the kernel's INIT
    mounted.mainloop() // returns Ok after umount or SIGTERM
}
