//! What a session left on a pooled server connection that outlives it.
//!
//! A server engine's connections serve one session's statement after
//! another's, and some of a session's state lives on the connection that runs
//! its statement: MySQL's current database, PostgreSQL's `TimeZone` or
//! `search_path`. [`ConnStates`] remembers, per connection, where each one
//! stands, so that a connection is brought to the session's state (a `USE`,
//! a `set_config`) only when it is elsewhere: sessions that keep the
//! defaults never pay a round trip for it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Connections listed before the list is cleared: a connection that closes
/// leaves its entry behind.
const MAX_LISTED: usize = 4096;

/// The state of each pooled connection that is not where new connections
/// start, by connection key.
#[derive(Debug)]
pub(crate) struct ConnStates<K, T> {
    /// `Some(state)` for a connection known to be in `state`, `None` for one
    /// that may be anywhere (reset since). Connections at the default are not
    /// listed, until the list is first cleared.
    listed: Mutex<HashMap<K, Option<T>>>,
    /// How many connections are listed, read without the lock.
    count: AtomicUsize,
    /// Set once the list was cleared: from then on a connection not listed
    /// may be anywhere, and is listed wherever it goes.
    cleared: AtomicBool,
}

impl<K, T> Default for ConnStates<K, T> {
    fn default() -> Self {
        ConnStates {
            listed: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            cleared: AtomicBool::new(false),
        }
    }
}

impl<K: Eq + Hash + Copy, T> ConnStates<K, T> {
    /// Whether connection `key` must be brought to `wanted` before it serves
    /// a session that wants it; `at_default`: `wanted` is where every new
    /// connection starts.
    pub(crate) fn needs<W>(&self, key: K, wanted: &W, at_default: bool) -> bool
    where
        T: Borrow<W>,
        W: PartialEq + ?Sized,
    {
        let cleared = self.cleared.load(Ordering::Acquire);
        if self.count.load(Ordering::Acquire) == 0 && !cleared {
            return !at_default;
        }
        let Ok(listed) = self.listed.lock() else {
            return true;
        };
        match listed.get(&key) {
            None => cleared || !at_default,
            Some(Some(state)) => state.borrow() != wanted,
            Some(None) => true,
        }
    }

    /// Records that connection `key` is now in `state` (`at_default`: where
    /// new connections start).
    pub(crate) fn now(&self, key: K, state: T, at_default: bool) {
        let Ok(mut listed) = self.listed.lock() else {
            return;
        };
        if at_default && !self.cleared.load(Ordering::Acquire) {
            listed.remove(&key);
        } else {
            if listed.len() >= MAX_LISTED && !listed.contains_key(&key) {
                listed.clear();
                self.cleared.store(true, Ordering::Release);
            }
            listed.insert(key, Some(state));
        }
        self.count.store(listed.len(), Ordering::Release);
    }

    /// Records that where connection `key` stands is no longer known (it is
    /// being reset): if it was not at the default, it may be anywhere.
    pub(crate) fn unknown(&self, key: K) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Ok(mut listed) = self.listed.lock()
            && let Some(state) = listed.get_mut(&key)
        {
            *state = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_moved_only_when_it_is_elsewhere() {
        let states: ConnStates<u32, String> = ConnStates::default();
        // New connections are at the default.
        assert!(!states.needs(1, "test", true));
        assert!(states.needs(1, "a", false));
        states.now(1, "a".to_owned(), false);
        assert!(!states.needs(1, "a", false));
        assert!(states.needs(1, "test", true), "moved away from the default");
        assert!(
            !states.needs(2, "test", true),
            "another connection did not move"
        );
        states.now(1, "test".to_owned(), true);
        assert!(!states.needs(1, "test", true));
        // A reset connection that had moved may be anywhere.
        states.now(3, "b".to_owned(), false);
        states.unknown(3);
        assert!(states.needs(3, "b", false));
        assert!(states.needs(3, "test", true));
        // One that had not moved is still at the default.
        states.unknown(2);
        assert!(!states.needs(2, "test", true));
    }

    #[test]
    fn a_full_list_is_cleared_and_then_every_connection_is_checked() {
        let states: ConnStates<usize, String> = ConnStates::default();
        for key in 0..MAX_LISTED {
            states.now(key, "a".to_owned(), false);
        }
        states.now(MAX_LISTED, "a".to_owned(), false);
        // Connection 0's entry went with the clearing: it may be anywhere,
        // even where new connections start.
        assert!(states.needs(0, "test", true));
        assert!(states.needs(0, "a", false));
        states.now(0, "test".to_owned(), true);
        assert!(!states.needs(0, "test", true), "listed at the default now");
        assert!(!states.needs(MAX_LISTED, "a", false));
    }
}
