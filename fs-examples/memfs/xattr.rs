//! Extended attributes: the namespaces tmpfs has (user, trusted, security) and a small
//! sorted list per inode, listed in descending byte order of the names as tmpfs (whose
//! simple_xattrs are an rbtree) lists them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use puffs::{Errno, XattrFlags};

/// File capabilities, which a write, truncate or chown takes away.
pub const CAPS: &str = "security.capability";

/// "No such attribute": ENODATA on Linux, ENOATTR on the BSDs.
pub const ENOATTR: Errno = Errno::NO_XATTR;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    User,
    Trusted,
    Security,
}

/// The namespace of `name`: EOPNOTSUPP for one tmpfs does not have, EINVAL for a bare
/// prefix ("user.").
pub fn namespace(name: &OsStr) -> Result<Namespace, Errno> {
    let name = name.as_bytes();
    for (prefix, ns) in [
        (&b"user."[..], Namespace::User),
        (b"trusted.", Namespace::Trusted),
        (b"security.", Namespace::Security),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return if rest.is_empty() {
                Err(Errno::EINVAL)
            } else {
                Ok(ns)
            };
        }
    }
    Err(Errno::EOPNOTSUPP)
}

/// A name and its value.
type Pair = (Box<[u8]>, Box<[u8]>);

/// One inode's extended attributes, sorted by name.
#[derive(Debug, Default)]
pub struct Xattrs(Vec<Pair>);

impl Xattrs {
    fn find(&self, name: &OsStr) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| (**n).cmp(name.as_bytes()))
    }

    pub fn get(&self, name: &OsStr) -> Option<&[u8]> {
        self.find(name).ok().map(|i| &*self.0[i].1)
    }

    /// Sets `name` to `value` under `flags` (CREATE: EEXIST if present; REPLACE:
    /// ENOATTR (ENODATA) if absent). Returns the length of the value replaced.
    pub fn set(
        &mut self,
        name: &OsStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> Result<Option<usize>, Errno> {
        match self.find(name) {
            Ok(_) if flags.contains(XattrFlags::CREATE) => Err(Errno::EEXIST),
            Ok(i) => {
                let old = self.0[i].1.len();
                self.0[i].1 = value.into();
                Ok(Some(old))
            }
            Err(_) if flags.contains(XattrFlags::REPLACE) => Err(ENOATTR),
            Err(i) => {
                self.0.insert(i, (name.as_bytes().into(), value.into()));
                Ok(None)
            }
        }
    }

    /// Removes `name`, returning its value's length; ENOATTR (ENODATA) if absent.
    pub fn remove(&mut self, name: &OsStr) -> Result<usize, Errno> {
        let i = self.find(name).map_err(|_| ENOATTR)?;
        Ok(self.0.remove(i).1.len())
    }

    /// The names in descending order, each followed by a NUL byte, leaving out those
    /// `hide` rejects.
    pub fn list(&self, hide: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, _) in self.0.iter().rev() {
            if !hide(n) {
                out.extend_from_slice(n);
                out.push(0);
            }
        }
        out
    }

    /// (name length, value length) of each attribute, for giving back its space.
    pub fn sizes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.0.iter().map(|(n, v)| (n.len(), v.len()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace(n("user.x")), Ok(Namespace::User));
        assert_eq!(namespace(n("trusted.x")), Ok(Namespace::Trusted));
        assert_eq!(namespace(n("security.x")), Ok(Namespace::Security));
        assert_eq!(namespace(n("user.")), Err(Errno::EINVAL));
        assert_eq!(
            namespace(n("system.posix_acl_access")),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(namespace(n("foo.bar")), Err(Errno::EOPNOTSUPP));
        assert_eq!(namespace(n("user")), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn set_flags_and_order() {
        let mut x = Xattrs::default();
        for name in [
            "user.a",
            "user.b",
            "trusted.t",
            "security.s",
            "user.zz",
            "user.aa",
        ] {
            x.set(n(name), b"1", XattrFlags::default()).unwrap();
        }
        assert_eq!(
            x.list(|_| false),
            b"user.zz\0user.b\0user.aa\0user.a\0trusted.t\0security.s\0"
        );

        let mut x = Xattrs::default();
        assert_eq!(x.set(n("user.b"), b"1", XattrFlags::default()), Ok(None));
        assert_eq!(x.set(n("user.a"), b"22", XattrFlags::default()), Ok(None));
        assert_eq!(
            x.set(n("user.b"), b"333", XattrFlags::default()),
            Ok(Some(1))
        );
        assert_eq!(
            x.set(n("user.b"), b"", XattrFlags::CREATE),
            Err(Errno::EEXIST)
        );
        assert_eq!(x.set(n("user.c"), b"", XattrFlags::REPLACE), Err(ENOATTR));
        assert_eq!(x.set(n("user.a"), b"", XattrFlags::REPLACE), Ok(Some(2)));
        assert_eq!(x.get(n("user.b")), Some(&b"333"[..]));
        assert_eq!(x.get(n("user.a")), Some(&b""[..]));
        assert_eq!(x.list(|_| false), b"user.b\0user.a\0");
        assert_eq!(x.list(|n| n.starts_with(b"user.a")), b"user.b\0");
        assert_eq!(x.remove(n("user.b")), Ok(3));
        assert_eq!(x.remove(n("user.b")), Err(ENOATTR));
        assert_eq!(x.get(n("user.b")), None);
    }
}
