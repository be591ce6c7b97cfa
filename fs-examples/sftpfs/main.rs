//! sftpfs: `sftpfs [-f] [-d] [-o opts] [user@]host:[dir] MOUNTPOINT` mounts a
//! directory of an SFTP server, reached through `ssh ... -s sftp` or any command
//! (`-o ssh_command=`, `-o sftp_server=`). Built on framebuf channels: requests are
//! pipelined, every one has a deadline, and a dead server gives errors, not hangs.

mod attr;
mod config;
mod conn;
mod data;
mod dir;
mod fs;
mod join;
mod names;
mod ops;
mod readahead;
mod writeback;

use puffs::PuffsUserMount;

use config::Config;

fn main() {
    let args = puffs::cli::Args::parse(
        "sftpfs",
        "A directory of an SFTP server: sftpfs [-o opts] [user@]host:[dir] MOUNTPOINT.",
        config::OPTIONS,
    );
    puffs::init_logging(args.debug);
    let config = Config::from_args(args.source.as_deref(), &args.options).unwrap_or_else(|e| {
        eprintln!("sftpfs: {e}");
        std::process::exit(1);
    });
    if let Err(e) = run(&args, config) {
        eprintln!("sftpfs: {e}");
        std::process::exit(1);
    }
}

fn run(args: &puffs::cli::Args, config: Config) -> Result<(), puffs::Error> {
    // The session is set up before mounting (and before forking into the background),
    // so a wrong host, key or directory fails the mount command with its reason.
    let argv = config.launch.argv();
    let (mut server, mut stream) = conn::Server::spawn(&argv)?;
    let hello =
        conn::handshake(&mut stream, &config.dir, config.timeout).map_err(|e| {
            match server.failure() {
                said if said.is_empty() => e,
                said => std::io::Error::new(e.kind(), format!("{e}; {} said: {said}", argv[0])),
            }
        })?;
    log::debug!("sftpfs: server offers {:?}", hello.extensions);
    let source = args.source.clone().unwrap_or_else(|| "sftpfs".into());
    let fs = fs::SftpFs::new(config, hello, stream, server);
    let mut pu = PuffsUserMount::new(fs, "sftpfs", &source)
        .options(&args.options)
        .max_write(1 << 20);
    if !args.foreground {
        pu = pu.daemon()?;
    }
    pu.mount(&args.mountpoint)?.mainloop()
}
