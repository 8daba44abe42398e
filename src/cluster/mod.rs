//! Cluster state as policies see it: `data.inventory` in Gatekeeper's layout, built offline from the
//! manifests being checked (plus an optional inventory file) or, in the server, from the API server.

pub mod inventory;
pub mod kube_source;
pub mod state;

pub use inventory::Inventory;
