//! The command line every example file system shares, in the FUSE style:
//!
//! ```text
//! PROG [-f] [-d] [-o opt[,opt...]]... [SOURCE] MOUNTPOINT
//! ```
//!
//! `-o` may repeat; its option strings are merged in order, so a later
//! `-o rw` undoes an earlier `-o ro`. The mount helper runs file systems with
//! exactly this synopsis.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::options::{FsOption, MountOptions, STANDARD_OPTIONS};

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// Stay in the foreground instead of daemonizing (`-f`, implied by `-d`).
    pub foreground: bool,
    /// Debug output (`-d`).
    pub debug: bool,
    /// The first of two positional arguments (a backing directory, a host...).
    pub source: Option<String>,
    /// Where to mount (the last positional argument).
    pub mountpoint: PathBuf,
    /// Every `-o` merged in order, checked against the standard options and
    /// the file system's own.
    pub options: MountOptions,
}

/// Why `try_parse_from` did not return `Args`: a usage error, or a request
/// for help or the version, whose text is the message.
#[derive(Clone, Debug, PartialEq)]
pub struct CliError {
    message: String,
    info: bool,
}

impl CliError {
    /// True for `--help` and `--version`: not a failure.
    pub fn is_info(&self) -> bool {
        self.info
    }

    /// The exit status conventional for this outcome: 0 for help and
    /// version, 1 for a usage error.
    pub fn exit_code(&self) -> i32 {
        if self.info {
            0
        } else {
            1
        }
    }

    fn from_clap(err: clap::Error) -> CliError {
        let info = matches!(
            err.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        CliError {
            message: err.to_string(),
            info,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message.trim_end())
    }
}

impl std::error::Error for CliError {}

impl Args {
    /// Parses `std::env::args_os()`. A usage error prints what is wrong and
    /// the usage to stderr and exits 1; `--help` and `--version` print to
    /// stdout and exit 0.
    pub fn parse(prog: &str, about: &str, fs_opts: &[FsOption]) -> Args {
        match Args::try_parse_from(prog, about, fs_opts, std::env::args_os()) {
            Ok(args) => args,
            Err(err) if err.is_info() => {
                println!("{err}");
                std::process::exit(0);
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(1);
            }
        }
    }

    /// Parses `argv` (whose first item is the program name, as in
    /// `std::env::args_os()`).
    pub fn try_parse_from<I: IntoIterator<Item = OsString>>(
        prog: &str,
        about: &str,
        fs_opts: &[FsOption],
        argv: I,
    ) -> Result<Args, CliError> {
        let mut cmd = command(prog, about, fs_opts);
        let matches = cmd
            .try_get_matches_from_mut(argv)
            .map_err(CliError::from_clap)?;
        args_from_matches(&matches, fs_opts)
            .map_err(|msg| CliError::from_clap(cmd.error(ErrorKind::InvalidValue, msg)))
    }
}

fn args_from_matches(matches: &ArgMatches, fs_opts: &[FsOption]) -> Result<Args, String> {
    let mut options = MountOptions::default();
    for opts in matches.get_many::<String>("options").into_iter().flatten() {
        options.merge(opts, fs_opts).map_err(|e| e.to_string())?;
    }
    let mut positional: Vec<OsString> = matches
        .get_many::<OsString>("paths")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mountpoint = PathBuf::from(positional.pop().ok_or("missing MOUNTPOINT")?);
    let source = positional
        .pop()
        .map(|s| s.into_string())
        .transpose()
        .map_err(|s| format!("SOURCE {s:?} is not valid UTF-8"))?;
    let debug = matches.get_flag("debug");
    Ok(Args {
        foreground: debug || matches.get_flag("foreground"),
        debug,
        source,
        mountpoint,
        options,
    })
}

fn command(prog: &str, about: &str, fs_opts: &[FsOption]) -> Command {
    Command::new(prog.to_string())
        .about(about.to_string())
        .version(env!("CARGO_PKG_VERSION"))
        .override_usage(format!(
            "{prog} [-f] [-d] [-o opt[,opt...]]... [SOURCE] MOUNTPOINT"
        ))
        .after_help(options_help(fs_opts))
        .arg(
            Arg::new("foreground")
                .short('f')
                .action(ArgAction::SetTrue)
                .help("Stay in the foreground (do not daemonize)"),
        )
        .arg(
            Arg::new("debug")
                .short('d')
                .action(ArgAction::SetTrue)
                .help("Print debugging output (implies -f)"),
        )
        .arg(
            Arg::new("options")
                .short('o')
                .value_name("opt[,opt...]")
                .action(ArgAction::Append)
                .help("Mount options (see below); may be repeated"),
        )
        .arg(
            Arg::new("paths")
                .value_name("[SOURCE] MOUNTPOINT")
                .value_parser(clap::value_parser!(OsString))
                .num_args(1..=2)
                .required(true)
                .help("What to mount (if the file system needs it) and where"),
        )
}

/// The option list appended to `--help`: the file system's own, then the
/// standard ones.
fn options_help(fs_opts: &[FsOption]) -> String {
    let mut text = String::new();
    if !fs_opts.is_empty() {
        text.push_str("File system options (-o):\n");
        text.push_str(&option_lines(fs_opts));
        text.push('\n');
    }
    text.push_str("Standard mount options (-o):\n");
    text.push_str(&option_lines(STANDARD_OPTIONS));
    text
}

fn option_lines(opts: &[FsOption]) -> String {
    let label = |o: &FsOption| {
        if o.takes_value {
            format!("{}=VALUE", o.name)
        } else {
            o.name.to_string()
        }
    };
    let width = opts.iter().map(|o| label(o).len()).max().unwrap_or(0);
    opts.iter()
        .map(|o| format!("  {:width$}  {}\n", label(o), o.help))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS: &[FsOption] = &[FsOption::value(
        "size",
        "total size in bytes (K/M/G suffix)",
    )];

    fn parse(argv: &[&str]) -> Result<Args, CliError> {
        let argv = std::iter::once("memfs").chain(argv.iter().copied());
        Args::try_parse_from(
            "memfs",
            "a file system in memory",
            FS,
            argv.map(OsString::from),
        )
    }

    #[test]
    fn mountpoint_only() {
        let a = parse(&["/mnt"]).unwrap();
        assert_eq!(a.mountpoint, PathBuf::from("/mnt"));
        assert_eq!(a.source, None);
        assert!(!a.foreground && !a.debug);
        assert_eq!(a.options, MountOptions::default());
    }

    #[test]
    fn source_and_mountpoint() {
        let a = parse(&["-f", "none", "/mnt"]).unwrap();
        assert_eq!(a.source.as_deref(), Some("none"));
        assert_eq!(a.mountpoint, PathBuf::from("/mnt"));
        assert!(a.foreground);
    }

    #[test]
    fn debug_implies_foreground() {
        let a = parse(&["-d", "/mnt"]).unwrap();
        assert!(a.debug && a.foreground);
    }

    #[test]
    fn repeated_o_merges_in_order() {
        let a = parse(&["-o", "ro,size=1M", "/mnt", "-orw", "-o", "size=2M"]).unwrap();
        assert!(!a.options.ro);
        assert_eq!(a.options.fs_value("size"), Some("2M"));
    }

    #[test]
    fn unknown_flag_is_named() {
        let e = parse(&["-x", "/mnt"]).unwrap_err();
        assert!(!e.is_info());
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("'-x'"), "{e}");
    }

    #[test]
    fn unknown_mount_option_is_named() {
        let e = parse(&["-o", "ro,bogus", "/mnt"]).unwrap_err();
        assert!(!e.is_info());
        assert!(
            e.to_string().contains("unknown mount option 'bogus'"),
            "{e}"
        );
        assert!(e.to_string().contains("Usage:"), "{e}");
    }

    #[test]
    fn wrong_number_of_paths() {
        assert!(parse(&[]).is_err());
        let e = parse(&["a", "b", "c"]).unwrap_err();
        assert!(e.to_string().contains("'c'"), "{e}");
    }

    #[test]
    fn help_lists_options_and_is_info() {
        let e = parse(&["--help"]).unwrap_err();
        assert!(e.is_info());
        assert_eq!(e.exit_code(), 0);
        let text = e.to_string();
        assert!(text.contains("size=VALUE"), "{text}");
        assert!(text.contains("attr_timeout=VALUE"), "{text}");
        assert!(text.contains("[SOURCE] MOUNTPOINT"), "{text}");
        assert!(parse(&["-h"]).unwrap_err().is_info());
    }

    #[test]
    fn version_is_info() {
        for flag in ["--version", "-V"] {
            let e = parse(&[flag]).unwrap_err();
            assert!(e.is_info());
            assert!(e.to_string().contains(env!("CARGO_PKG_VERSION")));
        }
    }
}
