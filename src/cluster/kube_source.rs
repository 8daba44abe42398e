//! Cluster state from the API server: one kube-runtime reflector per watched kind (Namespaces,
//! NetworkPolicies, Ingresses, and, when discovery finds their CRDs, Cilium network policies and Gateway
//! API Gateways, HTTP/gRPC/TLS routes and ListenerSets), each object projected on arrival to the fields policies read (bounded memory:
//! no managedFields, no status, annotations only under known prefixes). A builder publishes a new
//! `data.inventory` generation at most every `debounce` when something changed, through a
//! [`SharedState`].
//!
//! Availability: not synced until every reflector has completed its initial list; a lookup fails when a
//! kind could never be listed (RBAC, unreachable API server) or when the API server has been unreachable
//! for longer than `stale_after` (probed every 10 s, every second while unreachable). Optional kinds are discovered at start and again
//! every `rediscover_interval`, so a CRD installed or removed while regate runs is watched or dropped; a
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
    // More hosts an ingress-nginx Ingress serves (ingress-tls counts them for host collisions).
    "nginx.ingress.kubernetes.io/server-alias",
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
    /// Metadata and `spec.parentRef`, `spec.listeners`.
    ListenerSetListeners,
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
    WatchedKind {
        group: "gateway.networking.k8s.io",
        version: "v1",
        kind: "GRPCRoute",
        plural: "grpcroutes",
        optional: true,
        projection: Projection::RouteHosts,
    },
    WatchedKind {
        group: "gateway.networking.k8s.io",
        version: "v1alpha2",
        kind: "TLSRoute",
        plural: "tlsroutes",
        optional: true,
        projection: Projection::RouteHosts,
    },
    WatchedKind {
        group: "gateway.networking.k8s.io",
        version: "v1",
        kind: "ListenerSet",
        plural: "listenersets",
        optional: true,
        projection: Projection::ListenerSetListeners,
    },
    WatchedKind {
        group: "gateway.networking.x-k8s.io",
        version: "v1alpha1",
        kind: "XListenerSet",
        plural: "xlistenersets",
        optional: true,
        projection: Projection::ListenerSetListeners,
    },
];

/// Tuning of the kube source.
#[derive(Debug, Clone)]
pub struct KubeSourceOptions {
    /// Minimum time between two inventory generations.
    pub debounce: Duration,
    /// How long the API server may be unreachable before lookups fail.
    pub stale_after: Duration,
    /// How often the API groups of optional kinds (CRDs) are discovered again.
    pub rediscover_interval: Duration,
}

impl Default for KubeSourceOptions {
    fn default() -> Self {
        KubeSourceOptions {
            debounce: Duration::from_millis(200),
            stale_after: Duration::from_secs(60),
            rediscover_interval: Duration::from_secs(30),
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
        (Projection::ListenerSetListeners, Some(spec)) => {
            map.insert("spec".into(), pick(&spec, &["parentRef", "listeners"]));
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

/// Whether a discovery error says the API group is not served (as opposed to "could not ask"): the API
/// server listed its groups without this one (kube's `MissingApiGroup`), or the group vanished between
/// that list and its query (404).
fn group_absent(err: &kube::Error) -> bool {
    match err {
        kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(_)) => true,
        kube::Error::Api(resp) => resp.code == 404,
        _ => false,
    }
}

struct KindState {
    watched: WatchedKind,
    resource: ApiResource,
    store: Store<DynamicObject>,
    synced: AtomicBool,
    /// Found by a rediscovery after start (see [`KubeSource::watch`]).
    late: bool,
    last_error: Mutex<Option<String>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
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
    /// When the oldest watch event not yet in a published inventory arrived.
    unpublished_since: Mutex<Option<Instant>>,
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
            unpublished_since: Mutex::new(None),
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
        for w in WATCHED_KINDS.iter().filter(|w| !w.optional) {
            let gvk = GroupVersionKind::gvk(w.group, w.version, w.kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, w.plural);
            self.watch(&client, w.clone(), resource, false);
        }
        // Optional kinds come from CRDs, which may be installed or removed while regate runs: they are
        // discovered at start (retried until the API server answers; never read "absent" from an
        // error) and again every `rediscover_interval`.
        let mut delay = Duration::from_secs(1);
        loop {
            let complete = self.discover_optional(&client).await;
            if complete && !self.discovered.swap(true, Ordering::SeqCst) {
                self.changes.fetch_add(1, Ordering::SeqCst);
            }
            if complete {
                delay = Duration::from_secs(1);
                tokio::time::sleep(self.options.rediscover_interval).await;
            } else {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }

    /// One discovery round over the optional kinds' API groups: starts watching kinds that appeared,
    /// stops watching kinds whose group or kind is gone. Returns false when a group could not be asked.
    async fn discover_optional(self: &Arc<Self>, client: &Client) -> bool {
        let mut groups: BTreeMap<&str, Vec<&WatchedKind>> = BTreeMap::new();
        for w in WATCHED_KINDS.iter().filter(|w| w.optional) {
            groups.entry(w.group).or_default().push(w);
        }
        let late = self.discovered.load(Ordering::SeqCst);
        let mut complete = true;
        for (group, kinds) in groups {
            match kube::discovery::group(client, group).await {
                Ok(api_group) => {
                    for w in kinds {
                        match api_group.recommended_kind(w.kind) {
                            Some((resource, _caps)) => {
                                if !self.is_watched(w.kind) {
                                    tracing::info!(group, kind = w.kind, version = %resource.version, "watching optional kind");
                                    self.watch(client, w.clone(), resource, late);
                                }
                            }
                            None => self.unwatch(w.kind),
                        }
                    }
                }
                Err(err) if group_absent(&err) => {
                    if !late {
                        tracing::info!(group, "API group not served; its kinds are not watched");
                    }
                    for w in kinds {
                        self.unwatch(w.kind);
                    }
                }
                Err(err) => {
                    tracing::warn!(group, error = %err, "discovery failed; retrying");
                    let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
                    health.unreachable_since.get_or_insert_with(Instant::now);
                    health.last_error = format!("discovery of {group}: {err}");
                    complete = false;
                }
            }
        }
        complete
    }

    fn is_watched(&self, kind: &str) -> bool {
        self.kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|k| k.watched.kind == kind)
    }

    /// Stops watching `kind` (its CRD was removed) and drops its objects from the next inventory.
    fn unwatch(&self, kind: &str) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let before = kinds.len();
        kinds.retain(|k| {
            if k.watched.kind != kind {
                return true;
            }
            if let Some(task) = k.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
                task.abort();
            }
            false
        });
        if kinds.len() != before {
            tracing::info!(kind, "kind no longer served; not watched");
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Starts a reflector for one kind. A `late` kind (found after start) does not hold readiness or
    /// availability back until its first list completes: its objects join the inventory once listed.
    fn watch(
        self: &Arc<Self>,
        client: &Client,
        watched: WatchedKind,
        resource: ApiResource,
        late: bool,
    ) {
        let writer: Writer<DynamicObject> = Writer::new(resource.clone());
        let state = Arc::new(KindState {
            watched: watched.clone(),
            resource: resource.clone(),
            store: writer.as_reader(),
            synced: AtomicBool::new(false),
            late,
            last_error: Mutex::new(None),
            task: Mutex::new(None),
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
        let kind_state = state.clone();
        let task = tokio::spawn(async move {
            let state = kind_state;
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
                        source
                            .unpublished_since
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(Instant::now);
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
        *state.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    }

    async fn probe(self: Arc<Self>, client: Client) {
        loop {
            let result =
                tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await;
            let healthy = matches!(result, Ok(Ok(_)));
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
            // Every 10 s while reachable; every second while not, so that the state is available again
            // within a second of the API server's return.
            tokio::time::sleep(Duration::from_secs(if healthy { 10 } else { 1 })).await;
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
                if k.late {
                    continue;
                }
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
                    // Events arriving from here on may miss this inventory: they mark themselves
                    // unpublished again.
                    self.unpublished_since
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
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

    fn generation_covering(&self, at: Instant) -> Option<u64> {
        let unpublished = *self
            .unpublished_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match unpublished {
            Some(since) if since <= at => None,
            _ => self.shared.snapshot().ok().map(|s| s.generation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_absent_group_is_told_apart_from_a_failed_discovery() {
        use kube::error::{DiscoveryError, ErrorResponse};
        let api = |code: u16| {
            kube::Error::Api(ErrorResponse {
                status: "Failure".into(),
                message: String::new(),
                reason: String::new(),
                code,
            })
        };
        // kube's answer when the API server lists its groups without this one (a missing CRD).
        assert!(group_absent(&kube::Error::Discovery(
            DiscoveryError::MissingApiGroup("cilium.io".into())
        )));
        assert!(group_absent(&api(404)));
        // Anything else is "could not ask": retried, never read as "absent".
        assert!(!group_absent(&api(403)));
        assert!(!group_absent(&api(503)));
        assert!(!group_absent(&kube::Error::Discovery(
            DiscoveryError::MissingResource("x".into())
        )));
    }

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
    fn listener_sets_keep_parent_and_listeners_and_ingresses_keep_server_aliases() {
        let mut ls = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
            "metadata": {"name": "shop", "namespace": "shop"},
            "spec": {"parentRef": {"name": "public", "namespace": "gateway-system"},
                     "listeners": [{"name": "https", "hostname": "a.shop.example.eu", "protocol": "HTTPS"}]},
            "status": {"conditions": []}});
        project(&mut ls, Projection::ListenerSetListeners);
        assert_eq!(ls["spec"]["parentRef"]["name"], "public");
        assert_eq!(ls["spec"]["listeners"][0]["protocol"], "HTTPS");
        assert!(ls.get("status").is_none());
        let mut ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop",
                         "annotations": {"nginx.ingress.kubernetes.io/server-alias": "b.example.eu",
                                         "nginx.ingress.kubernetes.io/rewrite-target": "/"}},
            "spec": {"rules": [{"host": "a.shop.example.eu"}]}});
        project(&mut ingress, Projection::IngressHosts);
        assert_eq!(
            ingress["metadata"]["annotations"],
            json!({"nginx.ingress.kubernetes.io/server-alias": "b.example.eu"})
        );
        let kinds: Vec<&str> = WATCHED_KINDS.iter().map(|w| w.kind).collect();
        for kind in ["GRPCRoute", "TLSRoute", "ListenerSet", "XListenerSet"] {
            assert!(kinds.contains(&kind), "{kind}");
        }
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
