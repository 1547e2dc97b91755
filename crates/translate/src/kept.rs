//! What one translation keeps for the next, by the [`Edition`] of the document it was derived
//! from: the last translation's values (`previous`) and this one's (`current`). A value moves
//! from the one to the other when it is used again, so that what a translation keeps is
//! exactly what it used.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use foldhash::fast::FixedState;
use portcullis_model::Edition;

/// Values by edition.
pub(crate) type ByEdition<V> = HashMap<Edition, V, FixedState>;

/// The value for `edition`: the one this translation used already, or the last one's (moved
/// into `current`), or made by `make` (and kept); with whether it was made. `make` may make
/// nothing: nothing is kept then, and there is no value.
pub(crate) fn kept_or_made<'c, V>(
    current: &'c mut ByEdition<V>,
    previous: Option<&mut ByEdition<V>>,
    edition: Edition,
    make: impl FnOnce() -> Option<V>,
) -> Option<(&'c V, bool)> {
    match current.entry(edition) {
        Entry::Occupied(used) => Some((used.into_mut(), false)),
        Entry::Vacant(slot) => match previous.and_then(|p| p.remove(&edition)) {
            Some(kept) => Some((slot.insert(kept), false)),
            None => Some((slot.insert(make()?), true)),
        },
    }
}
