//! The open-file table: the kernel's file handles (`fh`) ↔ the file system's open-file
//! and open-directory objects (`Ops::File`, `Ops::Dir`). `open`/`create`/`opendir`
//! hand the framework an object, it numbers it, and every later request on that open
//! file finds it here; `release`/`releasedir` take it out again.
//!
//! Objects are kept in `Rc`s so that an op can hold one across `.await`s while the
//! table stays free to change; release waits until it holds the last one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::ops::Ops;

/// The handle every open gets when the file system leaves `open` (or `opendir`) out:
/// the kernel then opens without asking and sends fh 0.
pub(crate) const STATELESS_FH: u64 = 0;

/// Open files and open directories. One counter numbers both, so a handle never names
/// one of each (getattr and setattr get handles of either).
pub(crate) struct Files<F: Ops> {
    next: Cell<u64>,
    files: Table<F::File>,
    dirs: Table<F::Dir>,
}

impl<F: Ops> Default for Files<F> {
    fn default() -> Self {
        Files {
            next: Cell::new(STATELESS_FH + 1),
            files: Table::default(),
            dirs: Table::default(),
        }
    }
}

impl<F: Ops> Files<F> {
    fn next_fh(&self) -> u64 {
        let fh = self.next.get();
        self.next.set(fh + 1);
        fh
    }

    /// Keeps an open file; returns its handle for the kernel.
    pub(crate) fn open_file(&self, file: F::File) -> u64 {
        let fh = self.next_fh();
        self.files.insert(fh, file);
        fh
    }

    /// The open file `fh` names (for fh 0 of a file system without `open`: the
    /// stateless object).
    pub(crate) fn file(&self, fh: u64) -> Option<Rc<F::File>> {
        self.files.get(fh, F::stateless_file)
    }

    /// Takes the open file out of the table (release).
    pub(crate) fn close_file(&self, fh: u64) -> Option<Rc<F::File>> {
        self.files.remove(fh)
    }

    /// Keeps an open directory; returns its handle for the kernel.
    pub(crate) fn open_dir(&self, dir: F::Dir) -> u64 {
        let fh = self.next_fh();
        self.dirs.insert(fh, dir);
        fh
    }

    /// The open directory `fh` names (fh 0: as for `file`).
    pub(crate) fn dir(&self, fh: u64) -> Option<Rc<F::Dir>> {
        self.dirs.get(fh, F::stateless_dir)
    }

    /// Takes the open directory out of the table (releasedir).
    pub(crate) fn close_dir(&self, fh: u64) -> Option<Rc<F::Dir>> {
        self.dirs.remove(fh)
    }

    /// How many files and directories are open (for tests).
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.files.0.borrow().len() + self.dirs.0.borrow().len()
    }
}

/// Handles to objects of one kind.
struct Table<T>(RefCell<HashMap<u64, Rc<T>>>);

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table(RefCell::new(HashMap::new()))
    }
}

impl<T> Table<T> {
    fn insert(&self, fh: u64, obj: T) {
        self.0.borrow_mut().insert(fh, Rc::new(obj));
    }

    fn get(&self, fh: u64, stateless: impl FnOnce() -> Option<T>) -> Option<Rc<T>> {
        if let Some(obj) = self.0.borrow().get(&fh) {
            return Some(Rc::clone(obj));
        }
        if fh != STATELESS_FH {
            return None;
        }
        let obj = Rc::new(stateless()?);
        self.0.borrow_mut().insert(fh, Rc::clone(&obj));
        Some(obj)
    }

    fn remove(&self, fh: u64) -> Option<Rc<T>> {
        self.0.borrow_mut().remove(&fh)
    }
}
