//! The state machine every [`crate::FileWriter`] shares.

use crate::{Error, StoragePath, WriterState};

/// Tracks `close`, `commit` and `cancel` of one writer and refuses what distribution's writers
/// refuse (reference: a write after close is "already closed", after commit "already
/// committed", after cancel "already cancelled", checked in that order; `close` after `commit`
/// or `cancel` is the registry's trailing no-op; a second `close` is refused).
///
/// Backends keep one per writer so every backend reports the same [`Error::WriterState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterLifecycle {
    driver: String,
    path: StoragePath,
    closed: bool,
    committed: bool,
    cancelled: bool,
}

impl WriterLifecycle {
    /// A lifecycle for a new writer of `path` in `driver`.
    pub fn new(driver: impl Into<String>, path: StoragePath) -> Self {
        WriterLifecycle {
            driver: driver.into(),
            path,
            closed: false,
            committed: false,
            cancelled: false,
        }
    }

    /// The path being written.
    pub fn path(&self) -> &StoragePath {
        &self.path
    }

    /// The [`Error::WriterState`] for `state`.
    pub fn error(&self, state: WriterState) -> Error {
        Error::WriterState {
            driver: self.driver.clone(),
            path: self.path.as_str().to_owned(),
            state,
        }
    }

    /// `Ok` while the writer may still write, commit or cancel.
    pub fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            Err(self.error(WriterState::Closed))
        } else if self.committed {
            Err(self.error(WriterState::Committed))
        } else if self.cancelled {
            Err(self.error(WriterState::Cancelled))
        } else {
            Ok(())
        }
    }

    /// Marks the writer closed. Returns whether the caller must flush (false when the writer
    /// was already committed or cancelled); a second close is an error.
    pub fn close(&mut self) -> Result<bool, Error> {
        if self.closed {
            return Err(self.error(WriterState::Closed));
        }
        self.closed = true;
        Ok(!(self.committed || self.cancelled))
    }

    /// Checks the writer is open and marks it cancelled.
    pub fn cancel(&mut self) -> Result<(), Error> {
        self.check_open()?;
        self.cancelled = true;
        Ok(())
    }

    /// Marks the writer committed (call after the commit succeeded).
    pub fn committed(&mut self) {
        self.committed = true;
    }

    /// Refuses every later use, as if cancelled (after a failure that left the upload in an
    /// unknown state).
    pub fn poison(&mut self) {
        self.cancelled = true;
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the commit succeeded.
    pub fn is_committed(&self) -> bool {
        self.committed
    }

    /// Whether the writer was cancelled (or poisoned).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lc() -> WriterLifecycle {
        WriterLifecycle::new("d", StoragePath::parse("/p").unwrap())
    }

    fn state(r: Result<impl std::fmt::Debug, Error>) -> WriterState {
        match r {
            Err(Error::WriterState { state, .. }) => state,
            other => panic!("expected a writer state error, got {other:?}"),
        }
    }

    #[test]
    fn distribution_order_and_trailing_close() {
        let mut w = lc();
        w.check_open().unwrap();
        assert!(w.close().unwrap());
        assert_eq!(state(w.check_open()), WriterState::Closed);
        assert_eq!(state(w.close()), WriterState::Closed);
        assert_eq!(state(w.cancel()), WriterState::Closed);

        let mut w = lc();
        w.committed();
        assert_eq!(state(w.check_open()), WriterState::Committed);
        assert_eq!(state(w.cancel()), WriterState::Committed);
        assert!(!w.close().unwrap(), "close after commit is a no-op");
        assert_eq!(state(w.close()), WriterState::Closed);

        let mut w = lc();
        w.cancel().unwrap();
        assert_eq!(state(w.cancel()), WriterState::Cancelled);
        assert!(!w.close().unwrap(), "close after cancel is a no-op");
        assert!(w.is_cancelled() && w.is_closed() && !w.is_committed());

        let mut w = lc();
        w.poison();
        assert_eq!(state(w.check_open()), WriterState::Cancelled);
        assert_eq!(
            w.error(WriterState::Closed).to_string(),
            "d: writer for /p already closed"
        );
    }
}
