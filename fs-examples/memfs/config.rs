//! memfs's own mount options, with tmpfs's meanings and defaults.

use puffs::options::{parse_size, FsOption, MountOptions};

use crate::data::PAGE;

pub const OPTIONS: &[FsOption] = &[
    FsOption::value(
        "size",
        "limit on file data in bytes (K/M/G/T suffix) or % of RAM; 0: none (default 50%)",
    ),
    FsOption::value(
        "inodes",
        "limit on inodes (K/M/G suffix); 0: none (default: half the RAM pages)",
    ),
    FsOption::value("nr_inodes", "the same as inodes (tmpfs's name)"),
    FsOption::value(
        "mode",
        "permissions of the root directory, octal (default 1777)",
    ),
    FsOption::value("uid", "owner of the root directory (default: the mounter)"),
    FsOption::value(
        "gid",
        "group of the root directory (default: the mounter's)",
    ),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bytes of file data; 0: unlimited.
    pub size: u64,
    /// Inodes; 0: unlimited.
    pub inodes: u64,
    /// Root directory permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Never update access times.
    pub noatime: bool,
    /// Export support (`-o export`): keep an index of inodes by number so that file
    /// handles outlive the kernel's cache.
    pub export: bool,
}

impl Default for Config {
    /// No limits, root directory 1777 owned by root.
    fn default() -> Self {
        Config {
            size: 0,
            inodes: 0,
            mode: 0o1777,
            uid: 0,
            gid: 0,
            noatime: false,
            export: false,
        }
    }
}

/// The machine's RAM in bytes (1 GiB where it cannot be read).
pub fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(1 << 30)
}

fn bad(name: &str, value: &str, why: &str) -> String {
    format!("bad value '{value}' for mount option '{name}': {why}")
}

impl Config {
    /// The configuration the options ask for, with tmpfs's defaults for the rest on a
    /// machine with `ram` bytes, mounted by `uid:gid`.
    pub fn from_options(o: &MountOptions, ram: u64, uid: u32, gid: u32) -> Result<Config, String> {
        let ram_pages = ram / PAGE;
        let mut c = Config {
            size: ram_pages / 2 * PAGE,
            inodes: ram_pages / 2,
            mode: 0o1777,
            uid,
            gid,
            noatime: o.noatime,
            export: o.export,
        };
        for (name, value) in &o.fs {
            let v = value.as_deref().unwrap_or("");
            match name.as_str() {
                "size" => {
                    c.size = match v.strip_suffix('%') {
                        Some(pct) => {
                            let pct: u64 = pct
                                .parse()
                                .map_err(|_| bad(name, v, "expected a percentage"))?;
                            ram_pages.saturating_mul(pct) / 100 * PAGE
                        }
                        None => parse_size(v).map_err(|e| bad(name, v, &e.to_string()))?,
                    }
                }
                "inodes" | "nr_inodes" => {
                    c.inodes = parse_size(v).map_err(|e| bad(name, v, &e.to_string()))?
                }
                "mode" => {
                    c.mode = u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad(name, v, "expected octal permission bits"))?
                }
                "uid" => c.uid = v.parse().map_err(|_| bad(name, v, "expected a number"))?,
                "gid" => c.gid = v.parse().map_err(|_| bad(name, v, "expected a number"))?,
                _ => {}
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &str) -> Result<Config, String> {
        let o = MountOptions::parse(opts, OPTIONS).map_err(|e| e.to_string())?;
        Config::from_options(&o, 8 << 30, 1000, 100)
    }

    #[test]
    fn defaults_are_tmpfs_like() {
        let c = parse("").unwrap();
        assert_eq!(c.size, 4 << 30);
        assert_eq!(c.inodes, (8 << 30) / 4096 / 2);
        assert_eq!((c.mode, c.uid, c.gid), (0o1777, 1000, 100));
    }

    #[test]
    fn options() {
        let c = parse("size=64M,inodes=1000,mode=755,uid=0,gid=5,noatime").unwrap();
        assert_eq!(
            (c.size, c.inodes, c.mode, c.uid, c.gid),
            (64 << 20, 1000, 0o755, 0, 5)
        );
        assert!(c.noatime);
        assert_eq!(parse("size=25%").unwrap().size, 2 << 30);
        assert_eq!(parse("size=0,nr_inodes=0").unwrap().size, 0);
        assert_eq!(parse("inodes=5,nr_inodes=7").unwrap().inodes, 7);
    }

    #[test]
    fn bad_values_name_the_option() {
        for o in ["size=lots", "mode=999", "mode=17777", "uid=-1", "size=x%"] {
            let e = parse(o).unwrap_err();
            assert!(e.contains(o.split('=').next().unwrap()), "{e}");
        }
        assert!(parse("bogus=1").unwrap_err().contains("bogus"));
    }
}
