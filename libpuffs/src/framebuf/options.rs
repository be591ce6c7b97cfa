//! How a channel behaves: its deadline, its send-queue limit, its batching.

use std::time::Duration;

/// How a [`Channel`](super::Channel) behaves; `ChannelOptions::default()` then the setters.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    pub(super) timeout: Option<Duration>,
    pub(super) max_queued: usize,
    pub(super) read_buffer: usize,
    pub(super) write_buffer: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            timeout: None,
            max_queued: 1 << 20,
            read_buffer: 64 << 10,
            write_buffer: 64 << 10,
        }
    }
}

impl ChannelOptions {
    /// A deadline for every [`Channel::request`](super::Channel::request): past it the request fails with
    /// `ETIMEDOUT` (and a late response is dropped). Default: none.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Flow control: senders wait while this many bytes of frames are queued and not
    /// yet written (urgent frames and a frame into an empty queue always go in).
    /// Default 1 MiB.
    pub fn max_queued(mut self, bytes: usize) -> Self {
        self.max_queued = bytes.max(1);
        self
    }

    /// The size of the read buffer (one `read(2)` fills it). Default 64 KiB.
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = bytes;
        self
    }

    /// The size of the write buffer that batches small frames into one `write(2)`;
    /// larger frames go out without a copy. Default 64 KiB.
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }
}
