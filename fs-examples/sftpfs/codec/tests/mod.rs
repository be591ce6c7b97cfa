//! The codec's tests: encodings and decodings checked byte for byte, a fuzz of the
//! decoders, and a conversation with a real OpenSSH sftp-server.

mod fuzz;
mod messages;
mod server;

use crate::consts::*;

/// Test-side encoders of what a server sends, so the decoders can be fed replies.
pub(super) mod serve {
    use super::*;
    use crate::Attrs;

    /// A whole frame (length prefix included) of type `kind` with `payload`.
    pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
        f.push(kind);
        f.extend_from_slice(payload);
        f
    }

    pub fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    pub fn reply(kind: u8, id: u32, rest: &[u8]) -> Vec<u8> {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(rest);
        frame(kind, &p)
    }

    pub fn status(id: u32, code: u32, msg: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        string(&mut p, msg);
        string(&mut p, b"en");
        reply(SSH_FXP_STATUS, id, &p)
    }

    pub fn attrs(a: &Attrs) -> Vec<u8> {
        let mut p = Vec::new();
        a.encode(&mut p);
        p
    }

    pub fn names(id: u32, entries: &[(&[u8], Attrs)]) -> Vec<u8> {
        let mut p = (entries.len() as u32).to_be_bytes().to_vec();
        for (name, a) in entries {
            string(&mut p, name);
            string(&mut p, b"-rw-r--r-- 1 u g 0 Jan 1 00:00 x");
            p.extend_from_slice(&attrs(a));
        }
        reply(SSH_FXP_NAME, id, &p)
    }
}
