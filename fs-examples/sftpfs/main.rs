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
mod sessions;
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
    // The sessions are set up before mounting (and before forking into the
    // background), so a wrong host, key or directory fails the mount command with its
    // reason. All are started first, so their ssh logins overlap.
    let argv = config.launch.argv();
    let mut started = Vec::new();
    for _ in 0..config.connections {
        started.push(conn::Server::spawn(&argv)?);
    }
    let mut hello = None;
    let mut first = Vec::new();
    for (mut server, mut stream) in started {
        let h =
            conn::handshake(&mut stream, &config.dir, config.timeout).map_err(|e| match server
                .failure()
            {
                said if said.is_empty() => e,
                said => std::io::Error::new(e.kind(), format!("{e}; {} said: {said}", argv[0])),
            })?;
        hello.get_or_insert(h);
        first.push((stream, server));
    }
    let hello = hello.ok_or_else(|| std::io::Error::other("no session"))?;
    log::debug!(
        "sftpfs: {} session(s); server offers {:?}",
        first.len(),
        hello.extensions
    );
    let source = args.source.clone().unwrap_or_else(|| "sftpfs".into());
    let fs = fs::SftpFs::new(config, hello, first);
    let mut pu = PuffsUserMount::new(fs, "sftpfs", &source)
        .options(&args.options)
        .max_write(1 << 20)
        // READs of 1 MiB (four SFTP requests at once), several in flight: fewer
        // round trips through the kernel than its default 128 KiB window.
        .max_readahead(4 << 20);
    if !args.foreground {
        pu = pu.daemon()?;
    }
    pu.mount(&args.mountpoint)?.mainloop()
}
