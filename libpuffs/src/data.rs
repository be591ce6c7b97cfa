//! What a read answers: bytes the file system owns, shares or has built in, sent to the
//! kernel without another copy.

use std::fmt;
use std::ops::Range;
use std::rc::Rc;

/// The answer to [`crate::Ops::read`]: an owned `Vec` (what aio's `read_at` gives), a
/// static slice (a constant file's contents), or a range of a shared buffer (a cache
/// the file system keeps). Each is handed to the kernel as it is.
///
/// `Vec<u8>` and `&'static [u8]` convert with `.into()`.
#[derive(Clone, Default)]
pub struct Data(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Vec<u8>),
    Static(&'static [u8]),
    Shared(Rc<[u8]>, Range<usize>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Static(&[])
    }
}

impl Data {
    /// No bytes: end of file.
    pub fn empty() -> Data {
        Data::default()
    }

    /// The bytes `range` of `buf`, shared (the range is cut to `buf`'s length).
    pub fn shared(buf: Rc<[u8]>, range: Range<usize>) -> Data {
        let end = range.end.min(buf.len());
        let start = range.start.min(end);
        Data(Repr::Shared(buf, start..end))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Static(s) => s,
            Repr::Shared(buf, r) => &buf[r.clone()],
        }
    }

    /// How many bytes there are.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether there are none (end of file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as a `Vec` (no copy when they are owned).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Owned(v) => v,
            _ => self.as_bytes().to_vec(),
        }
    }
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Data {
        Data(Repr::Owned(v))
    }
}

impl From<&'static [u8]> for Data {
    fn from(s: &'static [u8]) -> Data {
        Data(Repr::Static(s))
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Repr::Owned(_) => "owned",
            Repr::Static(_) => "static",
            Repr::Shared(..) => "shared",
        };
        write!(f, "Data({kind}, {} bytes)", self.len())
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_gives_its_bytes() {
        let owned = Data::from(b"abc".to_vec());
        let fixed = Data::from(&b"abc"[..]);
        let buf: Rc<[u8]> = Rc::from(&b"xabcx"[..]);
        let shared = Data::shared(Rc::clone(&buf), 1..4);
        assert_eq!(owned, fixed);
        assert_eq!(shared.as_bytes(), b"abc");
        assert_eq!(Data::shared(buf, 3..99).as_bytes(), b"cx");
        assert!(Data::empty().is_empty());
        assert_eq!(shared.into_vec(), b"abc");
    }
}
