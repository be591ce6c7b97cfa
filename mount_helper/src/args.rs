//! The two command lines mount_puffs understands.
//!
//! As `mount_puffs` (its own synopsis):
//! ```text
//! mount_puffs [-v] [-f] [--fs-dir DIR] -t TYPE [-o OPTS]... [SOURCE] MOUNTPOINT
//! mount_puffs [-v] -u [-l|--lazy] MOUNTPOINT
//! mount_puffs [-v] -l | list
//! mount_puffs install-links DIR [TYPE...]
//! ```
//! As `mount.puffs` or `mount.puffs.TYPE` (the mount(8) helper convention,
//! where `-f` means "fake", not "foreground"):
//! ```text
//! mount.puffs[.TYPE] SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTS] [-t puffs.TYPE]
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::{HelperError, Result};

/// What to do.
#[derive(Debug, PartialEq)]
pub enum Action {
    Mount(MountRequest),
    Unmount {
        mountpoint: PathBuf,
        lazy: bool,
    },
    List,
    InstallLinks {
        dir: PathBuf,
        types: Vec<String>,
    },
    /// Print this (help or version) to stdout and exit 0.
    Info(String),
}

#[derive(Debug, Default, PartialEq)]
pub struct MountRequest {
    pub fstype: String,
    pub source: Option<String>,
    pub mountpoint: PathBuf,
    /// The `-o` strings joined, mount(8)'s own options not yet dropped.
    pub options: String,
    /// Run the file system in the foreground (exec it).
    pub foreground: bool,
    /// Check everything but do not mount (mount(8)'s `-f`).
    pub fake: bool,
    pub fs_dir: Option<PathBuf>,
    /// Mount namespace to enter first (mount(8)'s `-N`).
    pub namespace: Option<String>,
}

/// The parsed command line: the action and whether to say what happens.
#[derive(Debug, PartialEq)]
pub struct Invocation {
    pub action: Action,
    pub verbose: bool,
}

/// How the program was called, from the name in argv[0].
#[derive(Debug, PartialEq)]
pub enum Style {
    Native,
    /// `mount.puffs` (type from -t) or `mount.puffs.TYPE`.
    Helper {
        fstype: Option<String>,
    },
}

pub fn style_of(argv0: &Path) -> Style {
    let name = argv0.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.strip_prefix("mount.puffs") {
        Some("") => Style::Helper { fstype: None },
        Some(rest) => match rest.strip_prefix('.') {
            Some(t) => Style::Helper {
                fstype: Some(t.to_string()),
            },
            None => Style::Native,
        },
        None => Style::Native,
    }
}

/// Parses `argv` according to the name it was called by.
pub fn parse(argv: Vec<OsString>) -> Result<Invocation> {
    let argv0 = argv.first().cloned().unwrap_or_default();
    match style_of(Path::new(&argv0)) {
        Style::Native => parse_native(argv),
        Style::Helper { fstype } => parse_helper(argv, fstype),
    }
}

fn clap_error(err: clap::Error) -> HelperError {
    HelperError::usage(err.to_string().trim_end().to_string())
}

/// Help and version are answers, not errors.
fn matches_or_info(
    cmd: Command,
    argv: Vec<OsString>,
) -> Result<std::result::Result<ArgMatches, String>> {
    match cmd.try_get_matches_from(argv) {
        Ok(m) => Ok(Ok(m)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Ok(Err(e.to_string()))
        }
        Err(e) => Err(clap_error(e)),
    }
}

const NATIVE_USAGE: &str = "\
mount_puffs [-v] [-f] [--fs-dir DIR] -t TYPE [-o OPTS]... [SOURCE] MOUNTPOINT
       mount_puffs [-v] -u [-l|--lazy] MOUNTPOINT
       mount_puffs -l | list
       mount_puffs install-links DIR [TYPE...]";

const NATIVE_AFTER_HELP: &str = "\
File system binaries are searched in --fs-dir, $PUFFS_FS_DIR, $PATH and the
directory of mount_puffs. Exit status: 0 success, 1 usage error, 32 mount or
unmount failure. See docs/mount_helper.md.";

fn native_command() -> Command {
    Command::new("mount_puffs")
        .about("Mount, unmount and list puffs file systems")
        .version(env!("CARGO_PKG_VERSION"))
        .override_usage(NATIVE_USAGE)
        .after_help(NATIVE_AFTER_HELP)
        .arg(value_arg(
            "type",
            't',
            "TYPE",
            "File system type (memfs, puffs.memfs, ...)",
        ))
        .arg(options_arg())
        .arg(flag_arg(
            "foreground",
            'f',
            "Run the file system in the foreground",
        ))
        .arg(flag_arg("verbose", 'v', "Say what is being done"))
        .arg(flag_arg("unmount", 'u', "Unmount MOUNTPOINT"))
        .arg(flag_arg(
            "l",
            'l',
            "List puffs mounts; with -u: unmount lazily",
        ))
        .arg(
            Arg::new("lazy")
                .long("lazy")
                .action(ArgAction::SetTrue)
                .help("With -u: detach now, clean up when no longer busy"),
        )
        .arg(
            Arg::new("fs-dir")
                .long("fs-dir")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Look for file system binaries here first"),
        )
        .arg(paths_arg(
            "ARGS",
            "[SOURCE] MOUNTPOINT, or a command and its arguments",
        ))
}

fn parse_native(argv: Vec<OsString>) -> Result<Invocation> {
    let m = match matches_or_info(native_command(), argv)? {
        Ok(m) => m,
        Err(info) => return Ok(info_invocation(info)),
    };
    let verbose = m.get_flag("verbose");
    let positional = positionals(&m);
    let action = if m.get_flag("unmount") {
        unmount_action(&m, positional)?
    } else if m.contains_id("type") {
        Action::Mount(native_mount(&m, positional)?)
    } else {
        command_action(&m, positional)?
    };
    Ok(Invocation { action, verbose })
}

fn info_invocation(text: String) -> Invocation {
    Invocation {
        action: Action::Info(text),
        verbose: false,
    }
}

fn unmount_action(m: &ArgMatches, positional: Vec<OsString>) -> Result<Action> {
    for conflicting in ["type", "options", "foreground"] {
        if m.value_source(conflicting) == Some(clap::parser::ValueSource::CommandLine) {
            return Err(HelperError::usage(format!(
                "-u takes only -l/--lazy, -v and a MOUNTPOINT, not --{conflicting}"
            )));
        }
    }
    let [mountpoint] = <[OsString; 1]>::try_from(positional)
        .map_err(|_| HelperError::usage("-u needs exactly one MOUNTPOINT"))?;
    Ok(Action::Unmount {
        mountpoint: PathBuf::from(mountpoint),
        lazy: m.get_flag("l") || m.get_flag("lazy"),
    })
}

fn native_mount(m: &ArgMatches, mut positional: Vec<OsString>) -> Result<MountRequest> {
    let fstype = m.get_one::<String>("type").cloned().unwrap_or_default();
    if positional.is_empty() || positional.len() > 2 {
        return Err(HelperError::usage(
            "expected [SOURCE] MOUNTPOINT after the options",
        ));
    }
    let mountpoint = PathBuf::from(positional.pop().unwrap_or_default());
    Ok(MountRequest {
        fstype: strip_puffs_prefix(&fstype)?,
        source: positional.pop().map(utf8_source).transpose()?,
        mountpoint,
        options: joined_options(m),
        foreground: m.get_flag("foreground"),
        fake: false,
        fs_dir: m.get_one::<PathBuf>("fs-dir").cloned(),
        namespace: None,
    })
}

/// `list`, `-l` and `install-links`: the forms without -t or -u.
fn command_action(m: &ArgMatches, positional: Vec<OsString>) -> Result<Action> {
    let words: Vec<&str> = positional
        .iter()
        .map(|a| a.to_str().unwrap_or(""))
        .collect();
    match words.as_slice() {
        [] if m.get_flag("l") => Ok(Action::List),
        ["list"] => Ok(Action::List),
        ["install-links", _, ..] => Ok(Action::InstallLinks {
            dir: PathBuf::from(&positional[1]),
            types: words[2..].iter().map(|t| t.to_string()).collect(),
        }),
        ["install-links"] => Err(HelperError::usage("install-links needs a DIR")),
        [] => Err(HelperError::usage(
            "nothing to do: give -t TYPE [SOURCE] MOUNTPOINT, -u MOUNTPOINT or -l (see --help)",
        )),
        _ => Err(HelperError::usage(format!(
            "missing -t TYPE before {:?} (or unknown command)",
            words[0]
        ))),
    }
}

const HELPER_USAGE: &str =
    "mount.puffs[.TYPE] SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTS] [-t puffs.TYPE]";

fn helper_command() -> Command {
    Command::new("mount.puffs")
        .about("mount(8) helper for puffs file systems (see mount_puffs --help)")
        .version(env!("CARGO_PKG_VERSION"))
        .override_usage(HELPER_USAGE)
        .arg(value_arg("type", 't', "puffs.TYPE", "File system type"))
        .arg(options_arg())
        .arg(flag_arg(
            "fake",
            'f',
            "Fake: check everything, mount nothing",
        ))
        .arg(flag_arg(
            "sloppy",
            's',
            "Accepted; the file system checks its options",
        ))
        .arg(flag_arg(
            "nomtab",
            'n',
            "Accepted; there is no mtab to write",
        ))
        .arg(flag_arg("verbose", 'v', "Say what is being done"))
        .arg(value_arg(
            "namespace",
            'N',
            "NS",
            "Mount in this mount namespace (pid or path)",
        ))
        .arg(paths_arg("SOURCE MOUNTPOINT", "What to mount and where"))
}

fn parse_helper(argv: Vec<OsString>, named_type: Option<String>) -> Result<Invocation> {
    let m = match matches_or_info(helper_command(), argv)? {
        Ok(m) => m,
        Err(info) => return Ok(info_invocation(info)),
    };
    let [source, mountpoint] = <[OsString; 2]>::try_from(positionals(&m))
        .map_err(|_| HelperError::usage(format!("usage: {HELPER_USAGE}")))?;
    let fstype = helper_type(named_type, m.get_one::<String>("type"))?;
    let request = MountRequest {
        fstype,
        source: Some(utf8_source(source)?),
        mountpoint: PathBuf::from(mountpoint),
        options: joined_options(&m),
        foreground: false,
        fake: m.get_flag("fake"),
        fs_dir: None,
        namespace: m.get_one::<String>("namespace").cloned(),
    };
    Ok(Invocation {
        action: Action::Mount(request),
        verbose: m.get_flag("verbose"),
    })
}

/// The type comes from the program name (mount.puffs.TYPE) or from
/// `-t puffs.TYPE`; given both, they must agree.
fn helper_type(named: Option<String>, flag: Option<&String>) -> Result<String> {
    let from_flag = flag.map(|t| strip_puffs_prefix(t)).transpose()?;
    match (named, from_flag) {
        (Some(a), Some(b)) if a != b => Err(HelperError::usage(format!(
            "type '{b}' from -t does not match '{a}' from the program name"
        ))),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(HelperError::usage(
            "no file system type: use -t puffs.TYPE or run as mount.puffs.TYPE",
        )),
    }
}

/// `puffs.memfs` and `memfs` both mean memfs; `puffs` alone means nothing.
fn strip_puffs_prefix(fstype: &str) -> Result<String> {
    let t = fstype.strip_prefix("puffs.").unwrap_or(fstype);
    if t.is_empty() || t == "puffs" {
        return Err(HelperError::usage(format!(
            "type '{fstype}' names no file system: use puffs.TYPE, e.g. puffs.memfs"
        )));
    }
    Ok(t.to_string())
}

fn utf8_source(source: OsString) -> Result<String> {
    source
        .into_string()
        .map_err(|s| HelperError::usage(format!("SOURCE {s:?} is not valid UTF-8")))
}

fn joined_options(m: &ArgMatches) -> String {
    let all: Vec<&str> = m
        .get_many::<String>("options")
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    all.join(",")
}

fn positionals(m: &ArgMatches) -> Vec<OsString> {
    m.get_many::<OsString>("paths")
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

fn flag_arg(id: &'static str, short: char, help: &'static str) -> Arg {
    Arg::new(id)
        .short(short)
        .action(ArgAction::SetTrue)
        .help(help)
}

fn value_arg(id: &'static str, short: char, name: &'static str, help: &'static str) -> Arg {
    Arg::new(id).short(short).value_name(name).help(help)
}

fn options_arg() -> Arg {
    Arg::new("options")
        .short('o')
        .value_name("OPTS")
        .action(ArgAction::Append)
        .help("Mount options, comma-separated; may be repeated")
}

fn paths_arg(name: &'static str, help: &'static str) -> Arg {
    Arg::new("paths")
        .value_name(name)
        .value_parser(clap::value_parser!(OsString))
        .num_args(0..)
        .help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(argv: &[&str]) -> Result<Invocation> {
        parse(argv.iter().map(OsString::from).collect())
    }

    fn mount_of(argv: &[&str]) -> MountRequest {
        match parse_strs(argv).unwrap().action {
            Action::Mount(r) => r,
            other => panic!("not a mount: {other:?}"),
        }
    }

    #[test]
    fn styles_from_program_name() {
        assert_eq!(style_of(Path::new("/usr/bin/mount_puffs")), Style::Native);
        assert_eq!(
            style_of(Path::new("/sbin/mount.puffs")),
            Style::Helper { fstype: None }
        );
        assert_eq!(
            style_of(Path::new("/sbin/mount.puffs.memfs")),
            Style::Helper {
                fstype: Some("memfs".into())
            }
        );
        assert_eq!(style_of(Path::new("mount.puffsfoo")), Style::Native);
    }

    #[test]
    fn native_mount() {
        let r = mount_of(&[
            "mount_puffs",
            "-t",
            "memfs",
            "-o",
            "size=1M",
            "-o",
            "ro",
            "none",
            "/mnt",
        ]);
        assert_eq!(r.fstype, "memfs");
        assert_eq!(r.source.as_deref(), Some("none"));
        assert_eq!(r.mountpoint, PathBuf::from("/mnt"));
        assert_eq!(r.options, "size=1M,ro");
        assert!(!r.foreground && !r.fake);
        let r = mount_of(&[
            "mount_puffs",
            "-f",
            "-t",
            "puffs.hellofs",
            "/mnt",
            "--fs-dir",
            "/x",
        ]);
        assert_eq!(r.fstype, "hellofs");
        assert_eq!(r.source, None);
        assert!(r.foreground);
        assert_eq!(r.fs_dir, Some(PathBuf::from("/x")));
    }

    #[test]
    fn unmount_and_list() {
        let inv = parse_strs(&["mount_puffs", "-u", "-l", "/mnt"]).unwrap();
        assert_eq!(
            inv.action,
            Action::Unmount {
                mountpoint: "/mnt".into(),
                lazy: true
            }
        );
        let inv = parse_strs(&["mount_puffs", "-v", "-u", "/mnt", "--lazy"]).unwrap();
        assert!(inv.verbose);
        assert!(matches!(inv.action, Action::Unmount { lazy: true, .. }));
        assert_eq!(
            parse_strs(&["mount_puffs", "-l"]).unwrap().action,
            Action::List
        );
        assert_eq!(
            parse_strs(&["mount_puffs", "list"]).unwrap().action,
            Action::List
        );
        assert!(parse_strs(&["mount_puffs", "-u"]).is_err());
        assert!(parse_strs(&["mount_puffs", "-u", "-t", "memfs", "/mnt"]).is_err());
    }

    #[test]
    fn install_links() {
        let inv = parse_strs(&["mount_puffs", "install-links", "/sbin", "memfs"]).unwrap();
        assert_eq!(
            inv.action,
            Action::InstallLinks {
                dir: "/sbin".into(),
                types: vec!["memfs".into()]
            }
        );
        assert!(parse_strs(&["mount_puffs", "install-links"]).is_err());
    }

    #[test]
    fn native_errors_name_the_problem() {
        let err = |argv: &[&str]| parse_strs(argv).unwrap_err();
        let e = err(&["mount_puffs", "-x", "-t", "memfs", "/mnt"]);
        assert!(e.message.contains("'-x'"), "{}", e.message);
        assert_eq!(e.code, crate::error::EXIT_USAGE);
        assert!(err(&["mount_puffs"]).message.contains("nothing to do"));
        assert!(err(&["mount_puffs", "none", "/mnt"])
            .message
            .contains("-t TYPE"));
        assert!(err(&["mount_puffs", "-t", "puffs", "/mnt"])
            .message
            .contains("'puffs'"));
        assert!(err(&["mount_puffs", "-t", "memfs", "a", "b", "c"])
            .message
            .contains("MOUNTPOINT"));
    }

    #[test]
    fn helper_convention() {
        let r = mount_of(&[
            "/sbin/mount.puffs",
            "none",
            "/mnt",
            "-o",
            "rw,size=64M",
            "-t",
            "puffs.memfs",
        ]);
        assert_eq!(r.fstype, "memfs");
        assert_eq!(r.options, "rw,size=64M");
        assert_eq!(r.source.as_deref(), Some("none"));
        let r = mount_of(&[
            "/sbin/mount.puffs.memfs",
            "none",
            "/mnt",
            "-sfnv",
            "-N",
            "1",
        ]);
        assert_eq!(r.fstype, "memfs");
        assert!(r.fake && !r.foreground);
        assert_eq!(r.namespace.as_deref(), Some("1"));
    }

    #[test]
    fn helper_type_errors() {
        assert!(parse_strs(&["mount.puffs", "none", "/mnt"]).is_err());
        assert!(parse_strs(&["mount.puffs.memfs", "none", "/mnt", "-t", "puffs.hellofs"]).is_err());
        assert!(parse_strs(&["mount.puffs.memfs", "none", "/mnt", "-t", "puffs.memfs"]).is_ok());
        assert!(parse_strs(&["mount.puffs.memfs", "/mnt"]).is_err());
    }

    #[test]
    fn help_and_version_are_info() {
        for argv in [
            ["mount_puffs", "--help"],
            ["mount_puffs", "--version"],
            ["mount.puffs", "-h"],
        ] {
            assert!(matches!(parse_strs(&argv).unwrap().action, Action::Info(_)));
        }
    }
}
