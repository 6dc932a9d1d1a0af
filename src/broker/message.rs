//! Moved to the leaf [`crate::message`] (shared with `store/`). This
//! re-export keeps `broker::message::…` paths compiling while other branches
//! merge; remove it once every caller names `crate::message`.

pub use crate::message::*;

/// The old process-wide millisecond clock, kept only until every caller
/// reads the broker's [`crate::clock::Clock`] (`Broker::clock()`). It reads
/// the real `Clock`'s scale, so old and new callers agree on deadlines.
pub mod clock {
    pub fn now_ms() -> u64 {
        crate::clock::Clock::real().millis()
    }
}
