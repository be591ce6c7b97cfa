//! Framing: each SFTP message is a big-endian u32 length, then that many bytes (a type
//! byte, a request id for all but INIT/VERSION, the payload). Reading, tag matching
//! and pipelining are the channel's (framebuf's) work; this only finds and bounds the
//! frames.

use crate::consts::SSH_FXP_VERSION;
use crate::wire::{DecodeError, Reader};

/// The largest frame accepted, OpenSSH's limit (`SFTP_MAX_MSG_LENGTH`, 256 KiB, not
/// counting the length field). A peer claiming more is refused before anything is
/// buffered for it.
pub const MAX_FRAME: usize = 256 * 1024;

/// The most data one READ may ask for so that its DATA reply fits in [`MAX_FRAME`]
/// (OpenSSH's `SFTP_MAX_READ_LENGTH`); `limits@openssh.com` may lower it.
pub const MAX_READ: u32 = (MAX_FRAME - 1024) as u32;

/// The body length a frame's 4-byte prefix announces: refused when it is zero (no type
/// byte) or beyond [`MAX_FRAME`].
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len == 0 {
        return Err(DecodeError::EmptyFrame);
    }
    if len > MAX_FRAME {
        return Err(DecodeError::Oversized {
            len: len as u64,
            max: MAX_FRAME as u64,
        });
    }
    Ok(len)
}

/// The first whole frame at the start of `buf`: its body and how many bytes of `buf`
/// it took, `None` while more bytes are needed, or an error for a bad length (the
/// channel must then be closed: its framing is lost).
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = frame_len(*prefix)?;
    Ok(buf.get(4..4 + len).map(|body| (body, 4 + len)))
}

/// The request id a reply body answers (the channel's tag), or `None` for VERSION
/// (the answer to INIT, which has no id) or a body too short to carry one.
pub fn reply_id(body: &[u8]) -> Option<u32> {
    let mut r = Reader::new(body);
    match r.u8().ok()? {
        SSH_FXP_VERSION => None,
        _ => r.u32().ok(),
    }
}

/// Starts a frame in `out`: a length placeholder and the type byte. [`end_frame`]
/// fills the length in.
pub(crate) fn begin_frame(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    start
}

/// Writes the length of the frame begun at `start`, or removes it and reports its
/// size when it came out larger than [`MAX_FRAME`] (the server would drop the session).
pub(crate) fn end_frame(out: &mut Vec<u8>, start: usize) -> Result<(), usize> {
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(len);
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}
