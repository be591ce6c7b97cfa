//! rot13fs: `rot13fs [-f] [-d] [-o opt[,opt...]] BACKING MOUNTPOINT` shows the
//! directory BACKING with every name and every byte of data rot13'ed: the layering
//! example. The null layer does all the work; rot13fs only says how names and data
//! change on their way (`puffs::null::Transform`).

#[path = "../nullfs/config.rs"]
mod config;

/// rot13 on ASCII letters; every other byte as it is. Its own inverse.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn rot13(b: u8) -> u8 {
    match b {
        b'a'..=b'z' => (b - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (b - b'A' + 13) % 26 + b'A',
        _ => b,
    }
}

#[cfg(target_os = "linux")]
mod layer {
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    use super::rot13;

    /// Names and data rot13'ed both ways.
    pub struct Rot13;

    fn name(n: &OsStr) -> OsString {
        OsString::from_vec(n.as_bytes().iter().map(|b| rot13(*b)).collect())
    }

    impl puffs::null::Transform for Rot13 {
        const CHANGES_DATA: bool = true;
        fn name_to_backing(&self, n: &OsStr) -> OsString {
            name(n)
        }
        fn name_from_backing(&self, n: &OsStr) -> OsString {
            name(n)
        }
        fn data_to_backing(&self, _offset: u64, data: &mut [u8]) {
            data.iter_mut().for_each(|b| *b = rot13(*b));
        }
        fn data_from_backing(&self, _offset: u64, data: &mut [u8]) {
            data.iter_mut().for_each(|b| *b = rot13(*b));
        }
    }
}

fn main() {
    let args = puffs::cli::Args::parse(
        "rot13fs",
        "Mount a directory again with its names and data rot13'ed.",
        config::OPTIONS,
    );
    puffs::init_logging(args.debug);
    if let Err(e) = run(&args) {
        eprintln!("rot13fs: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_os = "linux")]
fn run(args: &puffs::cli::Args) -> Result<(), String> {
    let config = config::Config::from_options(&args.options)?;
    let backing = args
        .source
        .clone()
        .ok_or("usage: rot13fs [-f] [-d] [-o opts] BACKING MOUNTPOINT")?;
    let fs = puffs::null::NullLayer::new(backing.as_ref(), layer::Rot13, config.layer())
        .map_err(|e| format!("cannot open {backing}: {e}"))?;
    config::run("rot13fs", args, &config, fs, &backing).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn run(_args: &puffs::cli::Args) -> Result<(), String> {
    Err("the null layer needs Linux (O_PATH, file handles)".into())
}

#[cfg(test)]
mod tests {
    use super::rot13;

    #[test]
    fn rot13_is_its_own_inverse_and_leaves_non_letters() {
        for b in 0..=255u8 {
            assert_eq!(rot13(rot13(b)), b);
        }
        let s: Vec<u8> = b"Hello, World/123".iter().map(|b| rot13(*b)).collect();
        assert_eq!(&s, b"Uryyb, Jbeyq/123");
    }
}
