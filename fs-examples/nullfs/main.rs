//! nullfs: `nullfs [-f] [-d] [-o opt[,opt...]] BACKING MOUNTPOINT` mounts the directory
//! BACKING again at MOUNTPOINT through the null layer (`puffs::null`): every op passes
//! through to the backing files, and open files are handed to the kernel (FUSE
//! passthrough) where it allows it.

mod config;

fn main() {
    let args = puffs::cli::Args::parse(
        "nullfs",
        "Mount a directory again through puffs' null layer.",
        config::OPTIONS,
    );
    puffs::init_logging(args.debug);
    if let Err(e) = run(&args) {
        eprintln!("nullfs: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_os = "linux")]
fn run(args: &puffs::cli::Args) -> Result<(), String> {
    let config = config::Config::from_options(&args.options)?;
    let backing = args
        .source
        .clone()
        .ok_or("usage: nullfs [-f] [-d] [-o opts] BACKING MOUNTPOINT")?;
    let fs = puffs::null::NullLayer::new(backing.as_ref(), puffs::null::Identity, config.layer())
        .map_err(|e| format!("cannot open {backing}: {e}"))?;
    config::run("nullfs", args, &config, fs, &backing).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn run(_args: &puffs::cli::Args) -> Result<(), String> {
    Err("the null layer needs Linux (O_PATH, file handles)".into())
}
