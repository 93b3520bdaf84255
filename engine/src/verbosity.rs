//! How much a command says on stderr beyond its results and errors: `-q` less, `-v` more.
//!
//! One level for the whole process, set once by `main` before any work starts. It changes only
//! what is logged on stderr (results go to stdout, files under `--out`), never a number, a
//! decision or a file, so reports stay byte-identical whatever the level.

use std::sync::atomic::{AtomicU8, Ordering};

/// The level `-q`/`-v` choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `-q`: results and errors only.
    Quiet = 0,
    /// The default: results, where the outputs are, warnings.
    Normal = 1,
    /// `-v`: also per-run progress, each case's resolved step-time model and the catalog files read.
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);

/// Sets the level for the rest of the process.
pub fn set(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether `-v` was given.
pub fn is_verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) >= Level::Verbose as u8
}

/// Prints `message()` on stderr under `-v`; the message is not built otherwise.
pub fn detail(message: impl FnOnce() -> String) {
    if is_verbose() {
        eprintln!("{}", message());
    }
}
