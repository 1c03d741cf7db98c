//! The skeleton of a set-based batch shared by the projections that fold rows in memory
//! (appointments, calls): the rows a batch touches are loaded once, each event folded into its
//! row, and only the rows that changed are written back.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// The distinct row ids a batch's decoded events touch, sorted (the rows to load).
pub(crate) fn distinct_ids<T>(decoded: &[(Uuid, T)]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = decoded.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Folds each decoded change into `rows` with `fold` (which says whether it changed its row)
/// and returns the rows that changed.
pub(crate) fn changed_rows<R, T>(
    mut rows: HashMap<Uuid, R>,
    decoded: Vec<(Uuid, T)>,
    mut fold: impl FnMut(&mut HashMap<Uuid, R>, Uuid, T) -> bool,
) -> Vec<R> {
    let mut changed = HashSet::new();
    for (id, change) in decoded {
        if fold(&mut rows, id, change) {
            changed.insert(id);
        }
    }
    rows.into_iter()
        .filter(|(id, _)| changed.contains(id))
        .map(|(_, row)| row)
        .collect()
}
