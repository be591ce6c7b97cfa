//! Buffered, non-blocking reads and writes on a channel's fd: the framing sees
//! `io::Read` / `io::Write`, and a frame's small reads and writes cost no system call
//! each. Big transfers skip the buffer (no copy). `EAGAIN` is `WouldBlock`; `EINTR`
//! is retried.

use std::io;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;

fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

fn write_fd(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::write(fd, buf) {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Bytes read from the fd and not yet taken by the framing.
pub(super) struct InBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl InBuf {
    pub(super) fn new(size: usize) -> Self {
        InBuf {
            buf: vec![0; size.max(1)].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// A reader of this buffer that refills it from `fd` when it runs dry.
    pub(super) fn reader<'a>(&'a mut self, fd: BorrowedFd<'a>) -> FdReader<'a> {
        FdReader { inb: self, fd }
    }
}

/// `io::Read` over an [`InBuf`] and its fd.
pub(super) struct FdReader<'a> {
    inb: &'a mut InBuf,
    fd: BorrowedFd<'a>,
}

impl io::Read for FdReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let b = &mut *self.inb;
        if b.start == b.end {
            if out.len() >= b.buf.len() {
                return read_fd(self.fd, out);
            }
            // Emptied only once the read succeeds: a WouldBlock must not bring the
            // bytes already taken back.
            // Emptied only once the read succeeds: a WouldBlock must not bring the
            // bytes already taken back.
            let n = read_fd(self.fd, &mut b.buf)?;
            (b.start, b.end) = (0, n);
        }
        let n = out.len().min(b.end - b.start);
        out[..n].copy_from_slice(&b.buf[b.start..b.start + n]);
        b.start += n;
        Ok(n)
    }
}

/// Bytes the framing wrote and the fd has not yet taken.
pub(super) struct OutBuf {
    buf: Vec<u8>,
    sent: usize,
    cap: usize,
}

impl OutBuf {
    pub(super) fn new(cap: usize) -> Self {
        OutBuf {
            buf: Vec::with_capacity(cap.max(1)),
            sent: 0,
            cap: cap.max(1),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// A writer into this buffer that spills to `fd` when it is full.
    pub(super) fn writer<'a>(&'a mut self, fd: BorrowedFd<'a>) -> FdWriter<'a> {
        FdWriter { out: self, fd }
    }

    /// Writes what is buffered to `fd` until it is all out (`Ok`) or the fd is full
    /// (`WouldBlock`).
    pub(super) fn flush_to(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        while !self.is_empty() {
            match write_fd(fd, &self.buf[self.sent..])? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => self.sent += n,
            }
        }
        self.buf.clear();
        self.sent = 0;
        Ok(())
    }

    /// Makes room by writing out once, and moves what is left to the front.
    fn spill(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.sent += write_fd(fd, &self.buf[self.sent..])?;
        self.buf.drain(..self.sent);
        self.sent = 0;
        Ok(())
    }
}

/// `io::Write` over an [`OutBuf`] and its fd.
pub(super) struct FdWriter<'a> {
    out: &'a mut OutBuf,
    fd: BorrowedFd<'a>,
}

impl io::Write for FdWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let o = &mut *self.out;
        if o.is_empty() && data.len() >= o.cap {
            return write_fd(self.fd, data);
        }
        if o.buf.len() == o.cap {
            o.spill(self.fd)?;
        }
        let n = data.len().min(o.cap - o.buf.len());
        o.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush_to(self.fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn would_block_after_a_drained_buffer_brings_nothing_back() {
        let (a, mut b) = pair();
        let mut inb = InBuf::new(64);
        b.write_all(b"abc").unwrap();
        let mut got = [0u8; 3];
        inb.reader(a.as_fd()).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abc");
        for _ in 0..2 {
            let e = inb.reader(a.as_fd()).read(&mut got).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        b.write_all(b"d").unwrap();
        assert_eq!(inb.reader(a.as_fd()).read(&mut got).unwrap(), 1);
        assert_eq!(got[0], b'd');
        drop(b);
        assert_eq!(
            inb.reader(a.as_fd()).read(&mut got).unwrap(),
            0,
            "end of file"
        );
    }

    #[test]
    fn small_writes_batch_and_a_full_fd_says_would_block() {
        let (a, mut b) = pair();
        let mut out = OutBuf::new(16);
        for _ in 0..3 {
            out.writer(a.as_fd()).write_all(b"xy").unwrap();
        }
        assert!(!out.is_empty(), "buffered, not yet written");
        out.flush_to(a.as_fd()).unwrap();
        let mut got = [0u8; 6];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"xyxyxy");
        // Fill the socket: the writer reports WouldBlock and keeps what it took.
        let chunk = [1u8; 4096];
        let mut taken = 0usize;
        let err = loop {
            match out.writer(a.as_fd()).write(&chunk) {
                Ok(n) => taken += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        b.set_nonblocking(true).unwrap();
        let mut drained = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            while let Ok(n) = b.read(&mut buf) {
                drained += n;
            }
            match out.flush_to(a.as_fd()) {
                Ok(()) => break,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        while let Ok(n) = b.read(&mut buf) {
            drained += n;
        }
        assert_eq!(drained, taken, "every byte taken was written once");
    }
}
