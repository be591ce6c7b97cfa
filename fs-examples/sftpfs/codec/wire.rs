//! The SFTP wire primitives: big-endian integers and length-prefixed strings, read
//! from a borrowed frame body that can never be over-read, and written to a `Vec`.

use std::fmt;

use puffs::Errno;

/// Why a frame could not be decoded. Every malformed, truncated or oversized reply ends
/// here (never a panic); the file system answers the request EIO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The frame ended before a field it must contain.
    Truncated,
    /// A frame length of zero: not even a type byte.
    EmptyFrame,
    /// A frame, string or handle longer than the protocol allows.
    Oversized {
        /// The length the peer claimed.
        len: u64,
        /// The most this field may hold.
        max: u64,
    },
    /// A count of items that cannot fit in what is left of the frame.
    TooMany {
        /// The count the peer claimed.
        count: u32,
    },
    /// A message type this client does not know, or not valid here.
    UnexpectedType(u8),
}

impl DecodeError {
    /// The errno a request gets when its reply is malformed: EIO.
    pub fn errno(&self) -> Errno {
        Errno::EIO
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "SFTP message truncated"),
            DecodeError::EmptyFrame => write!(f, "SFTP frame of length zero"),
            DecodeError::Oversized { len, max } => {
                write!(f, "SFTP field of {len} bytes exceeds the limit of {max}")
            }
            DecodeError::TooMany { count } => {
                write!(
                    f,
                    "SFTP message claims {count} items, more than it can hold"
                )
            }
            DecodeError::UnexpectedType(t) => write!(f, "unexpected SFTP message type {t}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a frame body; every read checks what is left first.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// How many bytes are left unread.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A length-prefixed string, borrowed from the frame.
    pub(crate) fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()?;
        self.take(len as usize)
    }

    /// A length-prefixed string of at most `max` bytes.
    pub(crate) fn string_max(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let s = self.string()?;
        if s.len() > max {
            return Err(DecodeError::Oversized {
                len: s.len() as u64,
                max: max as u64,
            });
        }
        Ok(s)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A length-prefixed string. Callers keep strings far below 4 GiB (the frame limit).
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s);
}
