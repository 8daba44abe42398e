//! Cluster state as the webhook sees it: a [`ClusterState`] source hands out versioned snapshots of
//! `data.inventory` (Gatekeeper layout), or says why it cannot ([`StateError`]). A lookup that cannot be
//! answered is never "no match": the server applies its failure mode instead (CVE-2025-46342).
//!
//! Sources: [`StaticState`] (fixed inventory, always synced; `serve --dev` uses an empty one),
//! [`SharedState`] (set from outside: tests, and the kube reflectors of
//! [`super::kube_source::KubeSource`] publish through it).
//!
//! ```
//! use regate::cluster::state::{ClusterState, SharedState, StateError};
//!
//! let state = SharedState::new();
//! assert_eq!(state.snapshot().unwrap_err(), StateError::NotSynced);
//! state.set_inventory(serde_json::json!({"cluster": {}, "namespace": {}}));
//! let snap = state.snapshot().unwrap();
//! assert_eq!(snap.generation, 1);
//! state.set_error(StateError::LookupFailed("connection refused".into()));
//! assert!(state.snapshot().unwrap_err().to_string().contains("connection refused"));
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::Value as Json;

/// Why cluster state cannot answer a lookup. `Display` is the reason shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The initial list of some watched kind has not completed yet.
    #[error("not yet synced with the API server")]
    NotSynced,
    /// The API server cannot be read (unreachable, forbidden, watch failing for too long).
    #[error("lookup failed: {0}")]
    LookupFailed(String),
}

/// One consistent view of cluster state. `generation` grows whenever the inventory changes.
#[derive(Debug, Clone)]
pub struct StateSnapshot {
    pub generation: u64,
    /// `data.inventory`: `{"cluster": {gv: {kind: {name: obj}}}, "namespace": {ns: {gv: {kind: {name: obj}}}}}`.
    pub inventory: Arc<Json>,
}

/// A source of cluster state. `snapshot` is called on every admission request, so it must be cheap
/// (hand out an `Arc`, never rebuild the inventory).
pub trait ClusterState: Send + Sync + 'static {
    /// The current inventory, or why it is unavailable.
    fn snapshot(&self) -> Result<StateSnapshot, StateError>;

    /// Objects held per kind (for the `regate_cluster_state_objects{kind}` gauge).
    fn object_counts(&self) -> BTreeMap<String, usize> {
        BTreeMap::new()
    }

    /// A short name of the source for logs (`static`, `kube`, ...).
    fn describe(&self) -> String {
        "custom".to_string()
    }

    /// The generation that holds every change this source received before `at`, or `None` while such
    /// a change is not yet published. A source without background updates is always current.
    fn generation_covering(&self, at: Instant) -> Option<u64> {
        let _ = at;
        self.snapshot().ok().map(|s| s.generation)
    }
}

/// The empty inventory document.
pub fn empty_inventory() -> Json {
    serde_json::json!({"cluster": {}, "namespace": {}})
}

/// A fixed inventory, always synced (generation 1).
#[derive(Debug, Clone)]
pub struct StaticState {
    snapshot: StateSnapshot,
}

impl StaticState {
    /// Synced, with nothing in it: `serve --dev` and clusters where no policy needs state.
    pub fn empty() -> StaticState {
        StaticState::new(empty_inventory())
    }

    /// Synced, with `inventory` (Gatekeeper layout, e.g. from [`super::Inventory::to_json`]).
    pub fn new(inventory: Json) -> StaticState {
        StaticState {
            snapshot: StateSnapshot {
                generation: 1,
                inventory: Arc::new(inventory),
            },
        }
    }
}

/// Objects per kind in an inventory document (Gatekeeper layout).
pub fn count_objects(inventory: &Json) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut add = |gvs: &Json| {
        for kinds in gvs.as_object().into_iter().flat_map(|m| m.values()) {
            for (kind, names) in kinds.as_object().into_iter().flatten() {
                *counts.entry(kind.clone()).or_insert(0) +=
                    names.as_object().map_or(0, |n| n.len());
            }
        }
    };
    add(&inventory["cluster"]);
    for gvs in inventory["namespace"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        add(gvs);
    }
    counts
}

impl ClusterState for StaticState {
    fn snapshot(&self) -> Result<StateSnapshot, StateError> {
        Ok(self.snapshot.clone())
    }

    fn object_counts(&self) -> BTreeMap<String, usize> {
        count_objects(&self.snapshot.inventory)
    }

    fn describe(&self) -> String {
        "static".to_string()
    }
}

#[derive(Debug)]
struct SharedInner {
    generation: u64,
    inventory: Option<Arc<Json>>,
    error: Option<StateError>,
    counts: BTreeMap<String, usize>,
}

/// Cluster state set from outside: starts not synced; [`SharedState::set_inventory`] publishes a new
/// generation, [`SharedState::set_error`] makes lookups fail until the next inventory or
/// [`SharedState::clear_error`].
#[derive(Debug)]
pub struct SharedState {
    inner: RwLock<SharedInner>,
    name: String,
}

impl Default for SharedState {
    fn default() -> Self {
        SharedState::new()
    }
}

impl SharedState {
    pub fn new() -> SharedState {
        SharedState::named("shared")
    }

    /// Like [`SharedState::new`], with the name [`ClusterState::describe`] reports.
    pub fn named(name: &str) -> SharedState {
        SharedState {
            inner: RwLock::new(SharedInner {
                generation: 0,
                inventory: None,
                error: None,
                counts: BTreeMap::new(),
            }),
            name: name.to_string(),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SharedInner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a new inventory (a new generation) and clears any error. Returns the generation.
    pub fn set_inventory(&self, inventory: Json) -> u64 {
        let mut inner = self.write();
        inner.generation += 1;
        inner.inventory = Some(Arc::new(inventory));
        inner.error = None;
        inner.generation
    }

    /// Makes lookups fail with `error` (the inventory is kept for when the error clears).
    pub fn set_error(&self, error: StateError) {
        self.write().error = Some(error);
    }

    /// Clears an error set by [`SharedState::set_error`].
    pub fn clear_error(&self) {
        self.write().error = None;
    }

    /// Sets the per-kind object counts reported as metrics.
    pub fn set_counts(&self, counts: BTreeMap<String, usize>) {
        self.write().counts = counts;
    }
}

impl ClusterState for SharedState {
    fn snapshot(&self) -> Result<StateSnapshot, StateError> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        if let Some(err) = &inner.error {
            return Err(err.clone());
        }
        match &inner.inventory {
            Some(inventory) => Ok(StateSnapshot {
                generation: inner.generation,
                inventory: inventory.clone(),
            }),
            None => Err(StateError::NotSynced),
        }
    }

    fn object_counts(&self) -> BTreeMap<String, usize> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .clone()
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_state_is_synced_and_empty() {
        let s = StaticState::empty().snapshot().unwrap();
        assert_eq!(s.generation, 1);
        assert_eq!(*s.inventory, empty_inventory());
    }

    #[test]
    fn objects_are_counted_per_kind() {
        let inv = serde_json::json!({
            "cluster": {"v1": {"Namespace": {"a": {}, "b": {}}}},
            "namespace": {"a": {"networking.k8s.io/v1": {"NetworkPolicy": {"x": {}}, "Ingress": {"i": {}}}},
                          "b": {"networking.k8s.io/v1": {"NetworkPolicy": {"y": {}}}}}
        });
        let counts = StaticState::new(inv).object_counts();
        assert_eq!(counts["Namespace"], 2);
        assert_eq!(counts["NetworkPolicy"], 2);
        assert_eq!(counts["Ingress"], 1);
    }

    #[test]
    fn shared_state_generations_and_errors() {
        let state = SharedState::new();
        assert_eq!(state.snapshot().unwrap_err(), StateError::NotSynced);
        assert_eq!(state.set_inventory(empty_inventory()), 1);
        assert_eq!(state.set_inventory(empty_inventory()), 2);
        state.set_error(StateError::LookupFailed("down".into()));
        assert_eq!(
            state.snapshot().unwrap_err().to_string(),
            "lookup failed: down"
        );
        state.clear_error();
        assert_eq!(state.snapshot().unwrap().generation, 2);
    }
}
