//! The aligned window O_DIRECT I/O needs, for every backend.
//!
//! Linux's O_DIRECT wants the memory address aligned (as the offset and length, which
//! are the caller's: the FUSE kernel sends page-aligned O_DIRECT requests, and an
//! unaligned one gets EINVAL from the backing fs, as it would natively). A `Vec<u8>`'s
//! heap pointer is not aligned, so for a file opened O_DIRECT the front (`mod.rs`)
//! swaps the buffer for an over-allocated one whose window from `start` is aligned and
//! as long as the caller's buffer (`open`); the backend does its I/O on `buf[start..]`;
//! after completion `close` moves what was read to the front. FreeBSD's O_DIRECT has no
//! alignment rule, so there the window always starts at 0.

use super::kind::Kind;

/// Alignment of O_DIRECT buffers (the page size covers every logical block size).
const ALIGN: usize = 4096;

/// `buf` (whose bytes are the data for a write) as a buffer whose window from the
/// returned start is the I/O's memory: `buf` itself with start 0 when no alignment is
/// needed or it already is aligned, else an aligned copy (writes) or a fresh zeroed
/// buffer (reads).
pub(crate) fn open(kind: Kind, direct: bool, buf: Vec<u8>) -> (Vec<u8>, usize) {
    if !direct || matches!(kind, Kind::Fsync { .. }) || buf.as_ptr().align_offset(ALIGN) == 0 {
        return (buf, 0);
    }
    let len = buf.len();
    let mut out = vec![0u8; len + ALIGN];
    let start = out.as_ptr().align_offset(ALIGN);
    out.truncate(start + len);
    if matches!(kind, Kind::Write) {
        out[start..].copy_from_slice(&buf);
    }
    (out, start)
}

/// The buffer the caller gave, back from the window `open` made: the `n` bytes the
/// I/O moved at its front, as long as it was.
pub(crate) fn close(mut buf: Vec<u8>, start: usize, n: usize) -> Vec<u8> {
    if start == 0 {
        return buf;
    }
    let len = buf.len() - start;
    buf.copy_within(start..start + n.min(len), 0);
    buf.truncate(len);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_write_window_is_aligned_and_holds_the_data() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (buf, start) = open(Kind::Write, true, data.clone());
        assert_eq!(buf[start..].as_ptr().align_offset(ALIGN), 0);
        assert!(buf[start..] == data[..]);
        assert!(close(buf, start, data.len()) == data);
    }

    #[test]
    fn a_direct_read_comes_back_at_the_front_at_its_length() {
        let (mut buf, start) = open(Kind::Read, true, vec![0; 8192]);
        assert_eq!(buf[start..].as_ptr().align_offset(ALIGN), 0);
        buf[start..start + 3].copy_from_slice(b"abc");
        let back = close(buf, start, 3);
        assert_eq!(back.len(), 8192);
        assert_eq!(&back[..3], b"abc");
    }

    #[test]
    fn buffered_io_keeps_its_buffer() {
        let data = vec![5u8; 100];
        let ptr = data.as_ptr();
        let (buf, start) = open(Kind::Write, false, data);
        assert_eq!((buf.as_ptr(), start), (ptr, 0));
    }
}
