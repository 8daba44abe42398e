//! Cluster state from the API server: one kube-runtime reflector per watched kind (Namespaces,
//! NetworkPolicies, Ingresses, and, when discovery finds their CRDs, Cilium network policies and Gateway
//! API Gateways/HTTPRoutes), each object projected on arrival to the fields policies read (bounded memory:
//! no managedFields, no status, annotations only under known prefixes). A builder publishes a new
//! `data.inventory` generation at most every `debounce` when something changed, through a
//! [`SharedState`].
//!
//! Availability: not synced until every reflector has completed its initial list; a lookup fails when a
//! kind could never be listed (RBAC, unreachable API server) or when the API server has been unreachable
//! for longer than `stale_after` (probed every 10 s). Optional kinds are discovered once at start; a
//! discovery error is retried, never read as "CRD absent".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::{Map, Value as Json};

use super::state::{ClusterState, SharedState, StateError, StateSnapshot};
use super::Inventory;

/// Annotation key prefixes kept on projected objects (everything else is dropped).
pub const KEPT_ANNOTATION_PREFIXES: &[&str] = &[
    "cert-manager.io/",
    "regate.dev/",
    "kubernetes.io/ingress.class",
];

/// How a watched kind is projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Metadata only (Namespaces).
    MetadataOnly,
    /// Metadata and the whole `spec` (and Cilium's `specs`): network policies.
    Spec,
    /// Metadata and `spec.ingressClassName`, `spec.rules[].host`, `spec.tls`.
    IngressHosts,
    /// Metadata and `spec.gatewayClassName`, `spec.listeners`.
    GatewayListeners,
    /// Metadata and `spec.hostnames`, `spec.parentRefs`.
    RouteHosts,
}

/// A kind regate watches.
#[derive(Debug, Clone)]
pub struct WatchedKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// Only watched when discovery finds the group (CRDs).
    pub optional: bool,
    pub projection: Projection,
}

/// Every kind regate may watch.
pub const WATCHED_KINDS: &[WatchedKind] = &[
    WatchedKind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        optional: false,
        projection: Projection::MetadataOnly,
    },
    WatchedKind {
        group: "networking.k8s.io",
        version: "v1",
        kind: "NetworkPolicy",
        plural: "networkpolicies",
        optional: false,
        projection: Projection::Spec,
    },
    WatchedKind {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        optional: false,
        projection: Projection::IngressHosts,
    },
    WatchedKind {
        group: "cilium.io",
        version: "v2",
        kind: "CiliumNetworkPolicy",
        plural: "ciliumnetworkpolicies",
        optional: true,
        projection: Projection::Spec,
    },
    WatchedKind {
        group: "cilium.io",
        version: "v2",
        kind: "CiliumClusterwideNetworkPolicy",
        plural: "ciliumclusterwidenetworkpolicies",
        optional: true,
        projection: Projection::Spec,
    },
    WatchedKind {
        group: "gateway.networking.k8s.io",
        version: "v1",
        kind: "Gateway",
        plural: "gateways",
        optional: true,
        projection: Projection::GatewayListeners,
    },
    WatchedKind {
        group: "gateway.networking.k8s.io",
        version: "v1",
        kind: "HTTPRoute",
        plural: "httproutes",
        optional: true,
        projection: Projection::RouteHosts,
    },
];

/// Tuning of the kube source.
#[derive(Debug, Clone)]
pub struct KubeSourceOptions {
    /// Minimum time between two inventory generations.
    pub debounce: Duration,
    /// How long the API server may be unreachable before lookups fail.
    pub stale_after: Duration,
}

impl Default for KubeSourceOptions {
    fn default() -> Self {
        KubeSourceOptions {
            debounce: Duration::from_millis(200),
            stale_after: Duration::from_secs(60),
        }
    }
}

/// Projects one object in place to what policies need.
pub fn project(object: &mut Json, projection: Projection) {
    let Json::Object(map) = object else {
        return;
    };
    if let Some(Json::Object(meta)) = map.get_mut("metadata") {
        let keep = [
            "name",
            "namespace",
            "labels",
            "annotations",
            "ownerReferences",
            "uid",
            "deletionTimestamp",
        ];
        meta.retain(|k, _| keep.contains(&k.as_str()));
        if let Some(Json::Object(annotations)) = meta.get_mut("annotations") {
            annotations.retain(|k, _| KEPT_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)));
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    let spec = map.remove("spec");
    let specs = map.remove("specs");
    map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
    let pick = |spec: &Json, keys: &[&str]| -> Json {
        let mut out = Map::new();
        for key in keys {
            if let Some(v) = spec.get(*key) {
                out.insert((*key).to_string(), v.clone());
            }
        }
        Json::Object(out)
    };
    match (projection, spec) {
        (Projection::MetadataOnly, _) | (_, None) => {}
        (Projection::Spec, Some(spec)) => {
            map.insert("spec".into(), spec);
        }
        (Projection::IngressHosts, Some(spec)) => {
            let mut out = pick(&spec, &["ingressClassName", "tls"]);
            if let Some(Json::Array(rules)) = spec.get("rules") {
                let hosts: Vec<Json> = rules
                    .iter()
                    .map(|r| {
                        let mut m = Map::new();
                        if let Some(h) = r.get("host") {
                            m.insert("host".into(), h.clone());
                        }
                        Json::Object(m)
                    })
                    .collect();
                if let Json::Object(o) = &mut out {
                    o.insert("rules".into(), Json::Array(hosts));
                }
            }
            map.insert("spec".into(), out);
        }
        (Projection::GatewayListeners, Some(spec)) => {
            map.insert(
                "spec".into(),
                pick(&spec, &["gatewayClassName", "listeners"]),
            );
        }
        (Projection::RouteHosts, Some(spec)) => {
            map.insert("spec".into(), pick(&spec, &["hostnames", "parentRefs"]));
        }
    }
    if projection == Projection::Spec {
        if let Some(specs) = specs {
            map.insert("specs".into(), specs);
        }
    }
}

fn project_dynamic(obj: &mut DynamicObject, projection: Projection) {
    obj.metadata.managed_fields = None;
    obj.metadata.resource_version = None;
    obj.metadata.creation_timestamp = None;
    obj.metadata.generation = None;
    obj.metadata.finalizers = None;
    obj.metadata.generate_name = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.retain(|k, _| KEPT_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)));
    }
    let mut data = std::mem::take(&mut obj.data);
    if let Json::Object(m) = &mut data {
        m.insert("metadata".into(), Json::Object(Map::new()));
    }
    project(&mut data, projection);
    if let Json::Object(m) = &mut data {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
    }
    obj.data = data;
}

struct KindState {
    watched: WatchedKind,
    resource: ApiResource,
    store: Store<DynamicObject>,
    synced: AtomicBool,
    last_error: Mutex<Option<String>>,
}

struct Health {
    unreachable_since: Option<Instant>,
    last_error: String,
}

/// Cluster state from kube reflectors, published through a [`SharedState`].
pub struct KubeSource {
    shared: SharedState,
    kinds: Mutex<Vec<Arc<KindState>>>,
    changes: AtomicU64,
    discovered: AtomicBool,
    health: Mutex<Health>,
    options: KubeSourceOptions,
}

impl KubeSource {
    /// Connects with the default configuration (in-cluster service account, else `KUBECONFIG` /
    /// `~/.kube/config`), starts discovery, reflectors and the builder on the current tokio runtime.
    /// Returns at once; the state reports [`StateError::NotSynced`] until every reflector has listed.
    pub async fn start_default(options: KubeSourceOptions) -> anyhow::Result<Arc<KubeSource>> {
        let client = Client::try_default()
            .await
            .map_err(|e| anyhow::anyhow!("kubernetes client configuration: {e}"))?;
        Ok(KubeSource::start(client, options))
    }

    /// Starts the source with `client` (see [`KubeSource::start_default`]).
    pub fn start(client: Client, options: KubeSourceOptions) -> Arc<KubeSource> {
        let source = Arc::new(KubeSource {
            shared: SharedState::named("kube"),
            kinds: Mutex::new(Vec::new()),
            changes: AtomicU64::new(0),
            discovered: AtomicBool::new(false),
            health: Mutex::new(Health {
                unreachable_since: None,
                last_error: String::new(),
            }),
            options,
        });
        let s = source.clone();
        let c = client.clone();
        tokio::spawn(async move { s.discover_and_watch(c).await });
        let s = source.clone();
        let c = client.clone();
        tokio::spawn(async move { s.probe(c).await });
        let s = source.clone();
        tokio::spawn(async move { s.build_loop().await });
        source
    }

    async fn discover_and_watch(self: Arc<Self>, client: Client) {
        let mut wanted: Vec<(WatchedKind, ApiResource)> = Vec::new();
        let mut optional_groups: BTreeMap<&str, Vec<&WatchedKind>> = BTreeMap::new();
        for w in WATCHED_KINDS {
            if w.optional {
                optional_groups.entry(w.group).or_default().push(w);
            } else {
                let gvk = GroupVersionKind::gvk(w.group, w.version, w.kind);
                wanted.push((w.clone(), ApiResource::from_gvk_with_plural(&gvk, w.plural)));
            }
        }
        for (group, kinds) in optional_groups {
            let mut delay = Duration::from_secs(1);
            loop {
                match kube::discovery::group(&client, group).await {
                    Ok(api_group) => {
                        for w in &kinds {
                            if let Some((ar, _caps)) = api_group.recommended_kind(w.kind) {
                                tracing::info!(group, kind = w.kind, version = %ar.version, "watching optional kind");
                                wanted.push(((*w).clone(), ar));
                            } else {
                                tracing::info!(
                                    group,
                                    kind = w.kind,
                                    "kind not served; not watched"
                                );
                            }
                        }
                        break;
                    }
                    Err(kube::Error::Api(resp)) if resp.code == 404 => {
                        tracing::info!(group, "API group not served; its kinds are not watched");
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(group, error = %err, "discovery failed; retrying");
                        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = Health {
                            unreachable_since: Some(Instant::now()),
                            last_error: format!("discovery of {group}: {err}"),
                        };
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        for (watched, resource) in wanted {
            let writer: Writer<DynamicObject> = Writer::new(resource.clone());
            let state = Arc::new(KindState {
                watched: watched.clone(),
                resource: resource.clone(),
                store: writer.as_reader(),
                synced: AtomicBool::new(false),
                last_error: Mutex::new(None),
            });
            self.kinds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(state.clone());
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let projection = watched.projection;
            let stream = watcher::watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .modify(move |obj: &mut DynamicObject| project_dynamic(obj, projection));
            let source = self.clone();
            tokio::spawn(async move {
                let mut events = std::pin::pin!(reflector::reflector(writer, stream));
                while let Some(event) = events.next().await {
                    match event {
                        Ok(ev) => {
                            if matches!(ev, Event::InitDone) {
                                state.synced.store(true, Ordering::SeqCst);
                                tracing::info!(
                                    kind = state.watched.kind,
                                    objects = state.store.len(),
                                    "cluster state kind synced"
                                );
                            }
                            *state.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                            source.changes.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(err) => {
                            tracing::warn!(kind = state.watched.kind, error = %err, "watch error");
                            *state.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(err.to_string());
                        }
                    }
                }
            });
        }
        self.discovered.store(true, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    async fn probe(self: Arc<Self>, client: Client) {
        loop {
            let result =
                tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await;
            {
                let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(Ok(_)) => health.unreachable_since = None,
                    Ok(Err(err)) => {
                        health.unreachable_since.get_or_insert_with(Instant::now);
                        health.last_error = err.to_string();
                    }
                    Err(_) => {
                        health.unreachable_since.get_or_insert_with(Instant::now);
                        health.last_error = "API server did not answer within 5s".into();
                    }
                }
            }
            self.changes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    /// What the state is now: an error, or `None` when every kind is synced and the API is reachable.
    fn availability(&self) -> Option<StateError> {
        {
            let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(since) = health.unreachable_since {
                if since.elapsed() >= self.options.stale_after {
                    return Some(StateError::LookupFailed(format!(
                        "API server unreachable for {}s: {}",
                        since.elapsed().as_secs(),
                        health.last_error
                    )));
                }
            }
        }
        if !self.discovered.load(Ordering::SeqCst) {
            return Some(StateError::NotSynced);
        }
        let kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        for k in kinds.iter() {
            if !k.synced.load(Ordering::SeqCst) {
                let err = k
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                return Some(match err {
                    Some(e) => StateError::LookupFailed(format!(
                        "cannot list {}/{} {}: {e}",
                        k.resource.group, k.resource.version, k.watched.kind
                    )),
                    None => StateError::NotSynced,
                });
            }
        }
        None
    }

    async fn build_loop(self: Arc<Self>) {
        let mut built = u64::MAX;
        loop {
            tokio::time::sleep(self.options.debounce).await;
            let changes = self.changes.load(Ordering::SeqCst);
            if changes == built {
                continue;
            }
            built = changes;
            match self.availability() {
                Some(err) => self.shared.set_error(err),
                None => {
                    let kinds: Vec<Arc<KindState>> =
                        self.kinds.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let mut inventory = Inventory::new();
                    let mut counts = BTreeMap::new();
                    for k in &kinds {
                        let objects = k.store.state();
                        counts.insert(k.watched.kind.to_string(), objects.len());
                        for obj in objects {
                            let mut json = match serde_json::to_value(obj.as_ref()) {
                                Ok(j) => j,
                                Err(_) => continue,
                            };
                            if let Json::Object(m) = &mut json {
                                m.insert(
                                    "apiVersion".into(),
                                    Json::String(k.resource.api_version.clone()),
                                );
                                m.insert("kind".into(), Json::String(k.resource.kind.clone()));
                            }
                            inventory.add(&json, "default");
                        }
                    }
                    self.shared.set_counts(counts);
                    let generation = self.shared.set_inventory(inventory.to_json());
                    tracing::debug!(generation, "cluster state inventory rebuilt");
                }
            }
        }
    }
}

impl ClusterState for KubeSource {
    fn snapshot(&self) -> Result<StateSnapshot, StateError> {
        self.shared.snapshot()
    }

    fn object_counts(&self) -> BTreeMap<String, usize> {
        self.shared.object_counts()
    }

    fn describe(&self) -> String {
        "kube".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_what_policies_read() {
        let mut ingress = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"a": "b"},
                         "annotations": {"cert-manager.io/cluster-issuer": "le", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                         "managedFields": [{"manager": "kubectl"}], "resourceVersion": "1"},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.eu"], "secretName": "t"}],
                     "rules": [{"host": "a.example.eu", "http": {"paths": [{"path": "/"}]}}]},
            "status": {"loadBalancer": {}}
        });
        project(&mut ingress, Projection::IngressHosts);
        assert_eq!(
            ingress,
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"a": "b"},
                             "annotations": {"cert-manager.io/cluster-issuer": "le"}},
                "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.eu"], "secretName": "t"}],
                         "rules": [{"host": "a.example.eu"}]}
            })
        );
    }

    #[test]
    fn namespaces_keep_metadata_only_and_netpols_keep_spec() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"regate.dev/tenant": "shop"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        project(&mut ns, Projection::MetadataOnly);
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "shop", "labels": {"regate.dev/tenant": "shop"}}})
        );
        let mut cnp = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "d"}, "specs": [{"endpointSelector": {}}], "status": {}});
        project(&mut cnp, Projection::Spec);
        assert_eq!(cnp["specs"][0], json!({"endpointSelector": {}}));
        assert!(cnp.get("status").is_none());
    }

    #[test]
    fn dynamic_objects_are_projected_and_serialise_flat() {
        let mut obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "shop", "managedFields": [{"manager": "x"}],
                         "annotations": {"other": "x"}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
            "status": {}
        }))
        .unwrap();
        project_dynamic(&mut obj, Projection::Spec);
        let json = serde_json::to_value(&obj).unwrap();
        assert_eq!(json["spec"]["policyTypes"][0], "Ingress");
        assert!(json.get("status").is_none());
        assert!(json["metadata"].get("managedFields").is_none());
        assert_eq!(json["metadata"]["annotations"], json!({}));
    }
}
