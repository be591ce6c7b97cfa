//! Mount options: the one parser shared by every file system binary and by
//! the mount helper, so `-o` means the same thing everywhere.
//!
//! An option string is a comma-separated list of `name` or `name=value`
//! items (`ro,size=64M,attr_timeout=1.5`). Values are split from names at the
//! first `=`, so a value may itself contain `=`. Empty items are ignored. A
//! comma or backslash inside a value is written `\,` or `\\` (the libfuse
//! convention), which lets an fsname such as an SFTP path contain commas.
//!
//! Standard options (the table [`STANDARD_OPTIONS`]) go into the fields of
//! [`MountOptions`]; the options a file system declares with [`FsOption`] are
//! kept, in order, in [`MountOptions::fs`]. Anything else is an error that
//! names the option.

use std::fmt;
use std::time::Duration;

/// An option a file system declares, e.g. memfs's `size=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsOption {
    /// The option's name, as written before any `=`.
    pub name: &'static str,
    /// Whether it is written `name=value` (true) or as a bare `name` (false).
    pub takes_value: bool,
    /// One line for `--help`.
    pub help: &'static str,
}

impl FsOption {
    /// An option given as a bare word (`name`).
    pub const fn flag(name: &'static str, help: &'static str) -> FsOption {
        FsOption {
            name,
            takes_value: false,
            help,
        }
    }

    /// An option that needs a value (`name=value`).
    pub const fn value(name: &'static str, help: &'static str) -> FsOption {
        FsOption {
            name,
            takes_value: true,
            help,
        }
    }
}

/// The options every file system accepts, for help texts. `parse` handles
/// each of them; a unit test keeps the two in step.
pub const STANDARD_OPTIONS: &[FsOption] = &[
    FsOption::flag("ro", "mount read-only (rw undoes it)"),
    FsOption::flag(
        "nosuid",
        "ignore set-user/group-id bits (always: puffs mounts are nosuid)",
    ),
    FsOption::flag(
        "nodev",
        "do not interpret device files (always: puffs mounts are nodev)",
    ),
    FsOption::flag("noexec", "do not allow executing files (exec undoes it)"),
    FsOption::flag("noatime", "do not update access times (atime undoes it)"),
    FsOption::flag("allow_other", "let users other than the mounter in"),
    FsOption::flag("default_permissions", "let the kernel check permissions"),
    FsOption::flag("auto_unmount", "unmount when the file system process exits"),
    FsOption::flag(
        "export",
        "file handles outlive the kernel's cache (for NFS servers, open_by_handle_at)",
    ),
    FsOption::flag(
        "overmount",
        "mount even where something is mounted already (stack on it)",
    ),
    FsOption::value("fsname", "source shown in the mount table"),
    FsOption::value("subtype", "type shown as fuse.SUBTYPE in the mount table"),
    FsOption::value(
        "max_write",
        "largest write request in bytes (K/M suffix allowed)",
    ),
    FsOption::value(
        "max_readahead",
        "the kernel's read-ahead window in bytes (K/M suffix allowed)",
    ),
    FsOption::value(
        "entry_timeout",
        "seconds the kernel caches names (e.g. 1.5)",
    ),
    FsOption::value(
        "attr_timeout",
        "seconds the kernel caches attributes (e.g. 1.5)",
    ),
    FsOption::value(
        "logfile",
        "append the daemon's log (its stderr) to this file",
    ),
    FsOption::value(
        "aio",
        "file I/O backend: uring, posix, linux (O_DIRECT files) or threads",
    ),
];

/// The values `aio=` takes.
pub const AIO_BACKENDS: &[&str] = &["uring", "posix", "linux", "threads"];

/// Options that a puffs mount cannot honour, with the reason: a user file
/// system never gets set-user-id programs or device files (as libfuse's
/// fusermount3 enforces for every user but root, and puffs for root too).
const REFUSED_OPTIONS: &[(&str, &str)] = &[
    ("suid", "puffs mounts are always nosuid"),
    ("dev", "puffs mounts are always nodev"),
];

/// Options accepted for compatibility with mount(8) and fstab, and ignored.
const IGNORED_OPTIONS: &[&str] = &["async", "defaults"];

/// Options that belong to mount(8) itself, never to a file system.
const MOUNT8_OPTIONS: &[&str] = &[
    "noauto", "auto", "nofail", "user", "users", "nouser", "owner", "group", "_netdev", "defaults",
];

/// Parsed mount options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MountOptions {
    /// `ro` (`rw` undoes it): the kernel refuses writes with EROFS.
    pub ro: bool,
    /// `nosuid`: accepted for mount(8); puffs mounts are nosuid always.
    pub nosuid: bool,
    /// `nodev`: accepted for mount(8); puffs mounts are nodev always.
    pub nodev: bool,
    /// `noexec` (`exec` undoes it).
    pub noexec: bool,
    /// `noatime` (`atime` and `relatime` undo it).
    pub noatime: bool,
    /// `allow_other`: users other than the mounter may enter.
    pub allow_other: bool,
    /// False unless given: the framework decides what absence means.
    pub default_permissions: bool,
    /// `auto_unmount`: unmount when the file system process exits.
    pub auto_unmount: bool,
    /// `export`: ask the kernel for export support (file handles that outlive its
    /// cache, as NFS servers need); the file system must find nodes by number.
    pub export: bool,
    /// `overmount`: mount on a directory that is already a mount point,
    /// stacking on what is there (refused without it).
    pub overmount: bool,
    /// `fsname=NAME`: the source shown in the mount table.
    pub fsname: Option<String>,
    /// `subtype=TYPE`: shown as type fuse.TYPE in the mount table.
    pub subtype: Option<String>,
    /// `max_write=BYTES`: the largest write request.
    pub max_write: Option<u32>,
    /// `max_readahead=BYTES`: the kernel's read-ahead window.
    pub max_readahead: Option<u32>,
    /// `entry_timeout=SECONDS`: how long the kernel caches names.
    pub entry_timeout: Option<Duration>,
    /// `attr_timeout=SECONDS`: how long the kernel caches attributes.
    pub attr_timeout: Option<Duration>,
    /// `logfile=PATH`: where a daemonized file system's stderr (and so its
    /// log) goes, appended, instead of /dev/null.
    pub logfile: Option<String>,
    /// `aio=uring|posix|linux|threads`: the file I/O backend (one of
    /// [`AIO_BACKENDS`]); absent, the framework picks.
    pub aio: Option<String>,
    /// File-system-specific options in the order given.
    pub fs: Vec<(String, Option<String>)>,
}

/// A mount option that could not be accepted; the message names it.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionError {
    option: String,
    message: String,
}

impl OptionError {
    /// An option nobody declared.
    pub fn unknown(option: &str) -> OptionError {
        OptionError {
            option: option.to_string(),
            message: format!("unknown mount option '{option}'"),
        }
    }

    /// A `name` given bare that must be `name=value`.
    pub fn needs_value(option: &str) -> OptionError {
        OptionError {
            option: option.to_string(),
            message: format!("option '{option}' needs a value"),
        }
    }

    /// A `name=value` for an option that is a bare word.
    pub fn takes_no_value(option: &str) -> OptionError {
        OptionError {
            option: option.to_string(),
            message: format!("option '{option}' takes no value"),
        }
    }

    /// A value the option cannot take, and why.
    pub fn bad_value(option: &str, value: &str, reason: &str) -> OptionError {
        OptionError {
            option: option.to_string(),
            message: format!("bad value '{value}' for option '{option}': {reason}"),
        }
    }

    /// A known option this mount cannot honour, and why.
    pub fn refused(option: &str, reason: &str) -> OptionError {
        OptionError {
            option: option.to_string(),
            message: format!("option '{option}' is not supported: {reason}"),
        }
    }

    /// The offending option's name (empty when no option was involved, as
    /// for a bare [`parse_size`] call).
    pub fn option(&self) -> &str {
        &self.option
    }

    /// Names the option a free-standing value error came from.
    fn for_option(self, option: &str, value: &str) -> OptionError {
        OptionError::bad_value(option, value, &self.message)
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptionError {}

/// What to do with an option the file system did not declare.
#[derive(Clone, Copy, PartialEq)]
enum Unknown {
    Reject,
    Keep,
}

impl MountOptions {
    /// Parses an option string against the standard options and `fs_opts`.
    pub fn parse(opts: &str, fs_opts: &[FsOption]) -> Result<MountOptions, OptionError> {
        let mut parsed = MountOptions::default();
        parsed.merge(opts, fs_opts)?;
        Ok(parsed)
    }

    /// Like [`parse`](Self::parse), but keeps options it does not know in
    /// `fs` instead of failing. For the mount helper, which validates the
    /// standard options but leaves the fs-specific ones to the file system.
    pub fn parse_lenient(opts: &str) -> Result<MountOptions, OptionError> {
        let mut parsed = MountOptions::default();
        parsed.merge_items(opts, &[], Unknown::Keep)?;
        Ok(parsed)
    }

    /// Applies more options on top of these; later options win (`rw` after
    /// `ro` clears `ro`). On error `self` may hold the options before it.
    pub fn merge(&mut self, opts: &str, fs_opts: &[FsOption]) -> Result<(), OptionError> {
        self.merge_items(opts, fs_opts, Unknown::Reject)
    }

    fn merge_items(
        &mut self,
        opts: &str,
        fs_opts: &[FsOption],
        unknown: Unknown,
    ) -> Result<(), OptionError> {
        for raw in split_items(opts) {
            let item = unescape(raw);
            let (name, value) = split_name_value(&item);
            if name.is_empty() {
                return Err(OptionError::unknown(&item));
            }
            if self.apply_standard(name, value)? {
                continue;
            }
            self.apply_fs(name, value, fs_opts, unknown)?;
        }
        Ok(())
    }

    /// Applies a standard option; false when `name` is not one.
    fn apply_standard(&mut self, name: &str, value: Option<&str>) -> Result<bool, OptionError> {
        if let Some((_, why)) = REFUSED_OPTIONS.iter().find(|(n, _)| *n == name) {
            return Err(OptionError::refused(name, why));
        }
        let flag = |field: &mut bool, on: bool| -> Result<bool, OptionError> {
            no_value(name, value)?;
            *field = on;
            Ok(true)
        };
        match name {
            "ro" => flag(&mut self.ro, true),
            "rw" => flag(&mut self.ro, false),
            "nosuid" => flag(&mut self.nosuid, true),
            "suid" => flag(&mut self.nosuid, false),
            "nodev" => flag(&mut self.nodev, true),
            "dev" => flag(&mut self.nodev, false),
            "noexec" => flag(&mut self.noexec, true),
            "exec" => flag(&mut self.noexec, false),
            "noatime" => flag(&mut self.noatime, true),
            // relatime and atime are the other settings of the same knob.
            "atime" | "relatime" => flag(&mut self.noatime, false),
            "allow_other" => flag(&mut self.allow_other, true),
            "default_permissions" => flag(&mut self.default_permissions, true),
            "auto_unmount" => flag(&mut self.auto_unmount, true),
            "export" => flag(&mut self.export, true),
            "overmount" => flag(&mut self.overmount, true),
            "fsname" => {
                self.fsname = Some(needs_value(name, value)?.to_string());
                Ok(true)
            }
            "subtype" => {
                self.subtype = Some(needs_value(name, value)?.to_string());
                Ok(true)
            }
            "max_write" => {
                self.max_write = Some(parse_bytes_u32(name, needs_value(name, value)?)?);
                Ok(true)
            }
            "max_readahead" => {
                self.max_readahead = Some(parse_bytes_u32(name, needs_value(name, value)?)?);
                Ok(true)
            }
            "entry_timeout" => {
                self.entry_timeout = Some(parse_timeout(name, needs_value(name, value)?)?);
                Ok(true)
            }
            "attr_timeout" => {
                self.attr_timeout = Some(parse_timeout(name, needs_value(name, value)?)?);
                Ok(true)
            }
            "logfile" => {
                self.logfile = Some(needs_value(name, value)?.to_string());
                Ok(true)
            }
            "aio" => {
                let v = needs_value(name, value)?;
                if !AIO_BACKENDS.contains(&v) {
                    let why = format!("one of {}", AIO_BACKENDS.join(", "));
                    return Err(OptionError::bad_value(name, v, &why));
                }
                self.aio = Some(v.to_string());
                Ok(true)
            }
            _ if IGNORED_OPTIONS.contains(&name) => flag(&mut false, false),
            _ => Ok(false),
        }
    }

    fn apply_fs(
        &mut self,
        name: &str,
        value: Option<&str>,
        fs_opts: &[FsOption],
        unknown: Unknown,
    ) -> Result<(), OptionError> {
        match fs_opts.iter().find(|o| o.name == name) {
            Some(decl) if decl.takes_value => {
                needs_value(name, value)?;
            }
            Some(_) => no_value(name, value)?,
            None if unknown == Unknown::Keep => {}
            None => return Err(OptionError::unknown(name)),
        }
        self.fs.push((name.to_string(), value.map(str::to_string)));
        Ok(())
    }

    /// The last value given for a file-system-specific option.
    pub fn fs_value(&self, name: &str) -> Option<&str> {
        self.fs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether a file-system-specific option was given at all.
    pub fn has(&self, name: &str) -> bool {
        self.fs.iter().any(|(n, _)| n == name)
    }

    /// The last value of a size option (`size=64M`) in bytes, or `None` if
    /// it was not given; a bad size is an error naming the option.
    pub fn fs_size(&self, name: &str) -> Result<Option<u64>, OptionError> {
        self.fs_value(name)
            .map(|v| parse_size(v).map_err(|e| e.for_option(name, v)))
            .transpose()
    }

    /// An option string that [`parse`](Self::parse) turns back into `self`.
    pub fn to_option_string(&self) -> String {
        let flags = [
            (self.ro, "ro"),
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
            (self.noatime, "noatime"),
            (self.allow_other, "allow_other"),
            (self.default_permissions, "default_permissions"),
            (self.auto_unmount, "auto_unmount"),
            (self.export, "export"),
            (self.overmount, "overmount"),
        ];
        let mut items: Vec<String> = flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_string())
            .collect();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                items.push(format!("{name}={}", escape(&v)));
            }
        };
        push("fsname", self.fsname.clone());
        push("subtype", self.subtype.clone());
        push("max_write", self.max_write.map(|n| n.to_string()));
        push("max_readahead", self.max_readahead.map(|n| n.to_string()));
        push("entry_timeout", self.entry_timeout.map(format_seconds));
        push("attr_timeout", self.attr_timeout.map(format_seconds));
        push("logfile", self.logfile.clone());
        push("aio", self.aio.clone());
        for (name, value) in &self.fs {
            match value {
                Some(v) => items.push(format!("{}={}", escape(name), escape(v))),
                None => items.push(escape(name)),
            }
        }
        items.join(",")
    }
}

/// Removes the options that belong to mount(8) (`noauto`, `nofail`, `user`,
/// `_netdev`, `x-*`, `comment=`, ...), keeping the rest as written.
pub fn drop_mount8_options(opts: &str) -> String {
    split_items(opts)
        .filter(|item| !item.is_empty() && !is_mount8_option(item))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_mount8_option(item: &str) -> bool {
    let (name, _) = split_name_value(item);
    let lower = name.to_ascii_lowercase();
    // Matching on the name also drops user=NAME, which mount(8) records.
    MOUNT8_OPTIONS.contains(&name) || lower.starts_with("x-") || name == "comment"
}

/// Parses a size: a number of bytes with an optional K, M, G or T suffix
/// (powers of 1024, either case). Overflowing u64 is an error.
pub fn parse_size(s: &str) -> Result<u64, OptionError> {
    let bad = |reason: &str| OptionError {
        option: String::new(),
        message: format!("bad size '{s}': {reason}"),
    };
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        Some(b't' | b'T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "expected a number with an optional K, M, G or T suffix",
        ));
    }
    let n: u64 = digits.parse().map_err(|_| bad("too large"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| bad("too large"))
}

/// A positive byte count that fits in 32 bits (max_write, max_readahead).
fn parse_bytes_u32(name: &str, value: &str) -> Result<u32, OptionError> {
    let bytes = parse_size(value).map_err(|e| e.for_option(name, value))?;
    match u32::try_from(bytes) {
        Ok(0) => Err(OptionError::bad_value(name, value, "must be positive")),
        Ok(n) => Ok(n),
        Err(_) => Err(OptionError::bad_value(name, value, "too large")),
    }
}

/// Parses seconds as a decimal (`2`, `1.5`, `.25`). Done by hand rather
/// than through f64 so that every Duration survives a round trip exactly.
fn parse_timeout(name: &str, value: &str) -> Result<Duration, OptionError> {
    let bad = |reason| OptionError::bad_value(name, value, reason);
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(bad("expected seconds, like 2 or 1.5"));
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().map_err(|_| bad("too large"))?
    };
    // Digits past nanoseconds are below what the kernel can use: dropped.
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'));
    Ok(Duration::new(secs, nanos))
}

fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{:09}", d.subsec_nanos());
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

fn no_value(name: &str, value: Option<&str>) -> Result<(), OptionError> {
    match value {
        None => Ok(()),
        Some(_) => Err(OptionError::takes_no_value(name)),
    }
}

fn needs_value<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, OptionError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(OptionError::needs_value(name)),
    }
}

fn split_name_value(item: &str) -> (&str, Option<&str>) {
    match item.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (item, None),
    }
}

/// Splits at commas not preceded by a backslash; items stay escaped.
fn split_items(opts: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(opts);
    std::iter::from_fn(move || {
        let s = rest?;
        let end = unescaped_comma(s);
        match end {
            Some(i) => {
                rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
    .filter(|item| !item.is_empty())
}

fn unescaped_comma(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b',' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Turns `\,` into `,` and `\\` into `\`; any other backslash stays, so a
/// value written without escapes in mind keeps its meaning.
fn unescape(item: &str) -> String {
    let mut out = String::with_capacity(item.len());
    let mut chars = item.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next @ (',' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(',', "\\,")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMFS: &[FsOption] = &[
        FsOption::value("size", "total size"),
        FsOption::value("inodes", "number of inodes"),
        FsOption::flag("nocache", "no caching"),
    ];

    #[test]
    fn parses_standard_and_fs_options() {
        let o = MountOptions::parse("ro,size=64M,attr_timeout=1.5,nocache", MEMFS).unwrap();
        assert!(o.ro);
        assert_eq!(o.attr_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(o.fs_value("size"), Some("64M"));
        assert_eq!(o.fs_size("size"), Ok(Some(64 << 20)));
        assert!(o.has("nocache"));
        assert!(!o.has("inodes"));
        assert_eq!(o.fs_value("nocache"), None);
    }

    #[test]
    fn max_readahead_is_a_standard_option_with_a_size() {
        let o = MountOptions::parse("max_readahead=4M,max_write=1M", MEMFS).unwrap();
        assert_eq!(o.max_readahead, Some(4 << 20));
        assert_eq!(o.max_write, Some(1 << 20));
        let again = MountOptions::parse(&o.to_option_string(), MEMFS).unwrap();
        assert_eq!(again, o, "it survives the helper's round trip");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let mut o = MountOptions::parse("ro,nosuid,noatime,size=1M", MEMFS).unwrap();
        o.merge("rw,relatime,size=2M", MEMFS).unwrap();
        assert!(!o.ro && o.nosuid && !o.noatime);
        assert_eq!(o.fs_value("size"), Some("2M"));
        assert_eq!(o.fs.len(), 2, "fs options keep their history in order");
    }

    #[test]
    fn ignores_empty_items_and_compat_options() {
        let o = MountOptions::parse(",,async,,defaults,", MEMFS).unwrap();
        assert_eq!(o, MountOptions::default());
    }

    #[test]
    fn values_split_on_first_equals() {
        let o = MountOptions::parse("fsname=a=b=c", &[]).unwrap();
        assert_eq!(o.fsname.as_deref(), Some("a=b=c"));
    }

    #[test]
    fn errors_name_the_option() {
        let err = |s: &str| MountOptions::parse(s, MEMFS).unwrap_err().to_string();
        assert_eq!(err("bogus"), "unknown mount option 'bogus'");
        assert_eq!(err("ro,bogus=1"), "unknown mount option 'bogus'");
        assert_eq!(err("size"), "option 'size' needs a value");
        assert_eq!(err("size="), "option 'size' needs a value");
        assert_eq!(err("ro=1"), "option 'ro' takes no value");
        assert_eq!(err("nocache=yes"), "option 'nocache' takes no value");
        assert_eq!(err("fsname"), "option 'fsname' needs a value");
        assert!(err("attr_timeout=x").starts_with("bad value 'x' for option 'attr_timeout': "));
        assert!(err("entry_timeout=-1").contains("'entry_timeout'"));
        assert!(err("max_write=0").contains("'max_write'"));
        assert!(err("max_write=8G").contains("too large"));
        assert!(err("max_readahead=0").contains("'max_readahead'"));
        assert_eq!(err("=x"), "unknown mount option '=x'");
    }

    #[test]
    fn suid_and_dev_are_refused_with_the_reason() {
        let e = MountOptions::parse("rw,suid", &[]).unwrap_err();
        assert_eq!(e.option(), "suid");
        assert!(e.to_string().contains("always nosuid"), "{e}");
        let e = MountOptions::parse_lenient("dev").unwrap_err();
        assert!(e.to_string().contains("always nodev"), "{e}");
        let help: Vec<&str> = STANDARD_OPTIONS.iter().map(|o| o.help).collect();
        assert!(!help
            .iter()
            .any(|h| h.contains("undoes it)") && h.contains("suid")));
    }

    #[test]
    fn overmount_and_logfile() {
        let o = MountOptions::parse("overmount,logfile=/tmp/fs.log", &[]).unwrap();
        assert!(o.overmount);
        assert_eq!(o.logfile.as_deref(), Some("/tmp/fs.log"));
        assert!(MountOptions::parse("logfile", &[]).is_err());
        assert!(MountOptions::parse("overmount=1", &[]).is_err());
    }

    #[test]
    fn aio_takes_a_backend_name() {
        for name in AIO_BACKENDS {
            let o = MountOptions::parse(&format!("aio={name}"), &[]).unwrap();
            assert_eq!(o.aio.as_deref(), Some(*name));
            assert_eq!(MountOptions::parse(&o.to_option_string(), &[]).unwrap(), o);
        }
        let e = MountOptions::parse("aio=libaio", &[]).unwrap_err();
        assert!(
            e.to_string().contains("uring, posix, linux, threads"),
            "{e}"
        );
        assert!(MountOptions::parse("aio", &[]).is_err());
    }

    #[test]
    fn option_error_reports_its_option() {
        let e = MountOptions::parse("size", MEMFS).unwrap_err();
        assert_eq!(e.option(), "size");
    }

    #[test]
    fn fs_size_names_the_option() {
        let o = MountOptions::parse("size=12X", MEMFS).unwrap();
        let e = o.fs_size("size").unwrap_err();
        assert_eq!(e.option(), "size");
        assert!(e.to_string().contains("'size'"), "{e}");
    }

    #[test]
    fn timeouts_and_max_write() {
        let o = MountOptions::parse("entry_timeout=.25,attr_timeout=2,max_write=1M", &[]).unwrap();
        assert_eq!(o.entry_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.attr_timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.max_write, Some(1 << 20));
        let long = MountOptions::parse("attr_timeout=1.0000000019", &[]).unwrap();
        assert_eq!(long.attr_timeout, Some(Duration::new(1, 1)));
        assert!(MountOptions::parse("attr_timeout=.", &[]).is_err());
        assert!(MountOptions::parse("attr_timeout=1e3", &[]).is_err());
    }

    #[test]
    fn every_standard_option_parses() {
        for opt in STANDARD_OPTIONS {
            let item = if opt.name == "aio" {
                "aio=posix".to_string()
            } else if opt.takes_value {
                format!("{}=1", opt.name)
            } else {
                opt.name.to_string()
            };
            let o = MountOptions::parse(&item, &[]).unwrap();
            assert!(o.fs.is_empty() && o != MountOptions::default(), "{item}");
        }
    }

    #[test]
    fn round_trips_through_to_option_string() {
        let cases = [
            "ro,nosuid,nodev,noexec,noatime,allow_other,default_permissions,auto_unmount,export,overmount",
            "logfile=/var/log/a\\,b.log",
            "fsname=host:/a\\,b,subtype=sftpfs,max_write=131072",
            "entry_timeout=1.5,attr_timeout=0.000000001,size=64M,nocache,size=1G",
            "fsname=back\\\\slash,inodes=a=b",
            "",
        ];
        for case in cases {
            let o = MountOptions::parse(case, MEMFS).unwrap();
            let again = MountOptions::parse(&o.to_option_string(), MEMFS).unwrap();
            assert_eq!(o, again, "{case} -> {}", o.to_option_string());
        }
        let o = MountOptions::parse("fsname=host:/a\\,b", &[]).unwrap();
        assert_eq!(o.fsname.as_deref(), Some("host:/a,b"));
    }

    #[test]
    fn lenient_parse_keeps_unknown_options_but_checks_standard_ones() {
        let o = MountOptions::parse_lenient("rw,size=64M,whatever").unwrap();
        assert_eq!(o.fs_value("size"), Some("64M"));
        assert!(o.has("whatever"));
        assert!(MountOptions::parse_lenient("attr_timeout=soon").is_err());
        assert!(MountOptions::parse_lenient("ro=1").is_err());
    }

    #[test]
    fn drops_mount8_options() {
        let s = "rw,noauto,size=64M,nofail,x-systemd.automount,X-mount.mkdir,\
                 comment=hi,_netdev,user,user=bob,users,nouser,owner,group,auto,defaults,ro";
        assert_eq!(drop_mount8_options(s), "rw,size=64M,ro");
        assert_eq!(drop_mount8_options(",,noauto,,"), "");
        assert_eq!(drop_mount8_options("fsname=a\\,b,noauto"), "fsname=a\\,b");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
        for bad in [
            "",
            "K",
            "-1",
            "1.5M",
            "12X",
            "16777216T",
            "99999999999999999999",
            " 1",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    /// Pseudo-random byte strings, biased towards the characters that
    /// matter to the parser, must never make it panic.
    #[test]
    fn never_panics_on_garbage() {
        const ALPHABET: &[u8] = b",=\\.-0123456789kKmMgGtTx ro_sizeattr_timeoutmax_write\xc3\xa9";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        (r >> 8) as u8
                    } else {
                        ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                    }
                })
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let _ = MountOptions::parse(&s, MEMFS);
            let _ = MountOptions::parse_lenient(&s);
            let _ = drop_mount8_options(&s);
            let _ = parse_size(&s);
            if let Ok(o) = MountOptions::parse(&s, MEMFS) {
                assert_eq!(MountOptions::parse(&o.to_option_string(), MEMFS), Ok(o));
            }
        }
    }
}
