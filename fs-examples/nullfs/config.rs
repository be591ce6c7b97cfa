//! nullfs's own mount options, and the mount they make (shared with rot13fs).
// Off Linux the binaries only say that the null layer needs Linux.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::time::Duration;

use puffs::options::{FsOption, MountOptions};

pub const OPTIONS: &[FsOption] = &[
    FsOption::flag(
        "passthrough",
        "let the kernel do open files' I/O on the backing files (FUSE passthrough; \
         the default where the kernel offers it)",
    ),
    FsOption::flag("nopassthrough", "serve all file data through the fs"),
    FsOption::flag(
        "keep_cache",
        "keep cached file data across opens (right when nothing changes the backing \
         directory behind the mount's back)",
    ),
    FsOption::flag(
        "writeback",
        "let the kernel cache writes (faster small writes; no passthrough then)",
    ),
    FsOption::flag(
        "inline_meta",
        "make metadata calls (create, unlink, rename, uncached lookups...) on the \
         fs's main thread, not a worker: faster on a fast local disk, but a call that \
         waits for the disk holds up every other request",
    ),
    FsOption::flag(
        "noinline_stat",
        "do even stat and name-cache lookups on a worker (for a backing directory on \
         a network file system, whose stat may wait for a server)",
    ),
    FsOption::value(
        "fd_cache",
        "how many fds of recently used nodes to keep open (default 4096)",
    ),
];

/// What the options ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub passthrough: bool,
    pub keep_cache: bool,
    pub writeback: bool,
    pub fd_cache: usize,
    pub export: bool,
    pub inline_meta: bool,
    pub inline_stat: bool,
}

impl Config {
    /// The configuration `o` asks for, with the defaults for the rest.
    pub fn from_options(o: &MountOptions) -> Result<Config, String> {
        let mut c = Config {
            passthrough: true,
            keep_cache: false,
            writeback: false,
            fd_cache: 4096,
            export: o.export,
            inline_meta: false,
            inline_stat: true,
        };
        for (name, value) in &o.fs {
            match name.as_str() {
                "passthrough" => c.passthrough = true,
                "nopassthrough" => c.passthrough = false,
                "keep_cache" => c.keep_cache = true,
                "writeback" => c.writeback = true,
                "inline_meta" => c.inline_meta = true,
                "noinline_stat" => c.inline_stat = false,
                "fd_cache" => {
                    let v = value.as_deref().unwrap_or("");
                    c.fd_cache =
                        v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("bad value '{v}' for fd_cache: expected a count")
                        })?
                }
                _ => {}
            }
        }
        if c.writeback && c.passthrough {
            // The kernel does not mix the two; writeback was asked for by name.
            c.passthrough = false;
        }
        Ok(c)
    }

    /// The null layer's settings.
    #[cfg(target_os = "linux")]
    pub fn layer(&self) -> puffs::null::NullConfig {
        puffs::null::NullConfig {
            passthrough: self.passthrough,
            fd_cache: self.fd_cache,
            keep_cache: self.keep_cache,
            writeback: self.writeback,
            export: self.export,
            inline_meta: self.inline_meta,
            inline_stat: self.inline_stat,
            ..Default::default()
        }
    }
}

/// Cache timeouts when none are given: the backing directory may change behind the
/// mount's back, so the kernel keeps names and attributes for a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Mounts `fs` from the command line and serves it until it is unmounted.
pub fn run<F: puffs::Ops>(
    name: &str,
    args: &puffs::cli::Args,
    config: &Config,
    fs: F,
    source: &str,
) -> Result<(), puffs::Error> {
    let o = &args.options;
    let pu = puffs::PuffsUserMount::new(fs, name, source)
        .entry_timeout(DEFAULT_TIMEOUT)
        .attr_timeout(DEFAULT_TIMEOUT)
        .options(o)
        .default_permissions(true)
        .writeback_cache(config.writeback)
        .passthrough(config.passthrough);
    let pu = if args.foreground { pu } else { pu.daemon()? };
    pu.mount(&args.mountpoint)?.mainloop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &str) -> Result<Config, String> {
        let o = MountOptions::parse(opts, OPTIONS).map_err(|e| e.to_string())?;
        Config::from_options(&o)
    }

    #[test]
    fn defaults_and_options() {
        let c = parse("").unwrap();
        assert!(c.passthrough && !c.keep_cache && !c.writeback);
        assert!(!c.inline_meta && c.inline_stat);
        let c = parse("inline_meta,noinline_stat").unwrap();
        assert!(c.inline_meta && !c.inline_stat);
        assert_eq!(c.fd_cache, 4096);
        let c = parse("nopassthrough,keep_cache,fd_cache=10").unwrap();
        assert!(!c.passthrough && c.keep_cache);
        assert_eq!(c.fd_cache, 10);
        assert!(!parse("writeback").unwrap().passthrough);
        assert!(parse("fd_cache=0").unwrap_err().contains("fd_cache"));
        assert!(parse("fd_cache=x").is_err());
    }
}
