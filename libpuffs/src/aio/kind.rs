//! What one I/O does, shared by the backends.

/// What one I/O does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Read,
    Write,
    Fsync { datasync: bool },
}
