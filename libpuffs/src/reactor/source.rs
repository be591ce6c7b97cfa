//! The poller's token namespace, owned by the reactor: every event names its source
//! by a token, and `Source::of` says which one, so the loop handles events with a
//! `match` instead of comparing numbers.

use crate::event::Token;

/// What a poller event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The loop's own wakeup (`wakeup.rs`): another thread queued work.
    Wake,
    /// Async I/O completions (`aio/`).
    Aio,
    /// The termination signals' pipe (`signals.rs`).
    Signals,
    /// An fd registration (`registration.rs`), by its slot in the reactor.
    Fd(usize),
}

/// Tokens below this belong to the loop's fixed sources (room for more); fd
/// registrations get tokens from here on.
const FIRST_FD: usize = 16;

impl Source {
    /// The token this source is registered with in the poller.
    pub(crate) fn token(self) -> Token {
        Token(match self {
            Source::Wake => 0,
            Source::Aio => 1,
            Source::Signals => 2,
            Source::Fd(slot) => FIRST_FD + slot,
        })
    }

    /// The source a token names; None for a fixed token no source uses.
    pub(crate) fn of(token: Token) -> Option<Source> {
        match token.0 {
            0 => Some(Source::Wake),
            1 => Some(Source::Aio),
            2 => Some(Source::Signals),
            t => t.checked_sub(FIRST_FD).map(Source::Fd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_is_found_from_its_token() {
        for s in [
            Source::Wake,
            Source::Aio,
            Source::Signals,
            Source::Fd(0),
            Source::Fd(7),
        ] {
            assert_eq!(Source::of(s.token()), Some(s));
        }
        assert_eq!(Source::of(Token(3)), None, "reserved, unused");
    }
}
