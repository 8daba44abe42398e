//! The end-to-end harness: a real control plane (`tests/e2e/`, a Go program built from the pinned
//! Kubernetes v1.37.2 modules: embedded etcd, kube-apiserver and kube-controller-manager on 127.0.0.1),
//! kubectl of the same release, and the real `regate serve` registered with the webhook configurations
//! rendered from `charts/regate` in URL mode (`webhook.url`, `tls.caBundle`), running with the chart's
//! ServiceAccount and RBAC (a token from the TokenRequest API).
//!
//! Without Go the tests print why and pass, unless `REGATE_REQUIRE_TOOLS=1` (CI), where they fail.
//! `.ci/run` builds the harness before the suite; a test builds it itself when it is missing or older
//! than its sources.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::server_common::{self, Server, TestCa};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn required() -> bool {
    std::env::var("REGATE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Skips (None) or, with `REGATE_REQUIRE_TOOLS=1`, fails.
fn unavailable<T>(why: String) -> Option<T> {
    if required() {
        panic!("the e2e control plane is required (REGATE_REQUIRE_TOOLS=1) but {why}");
    }
    eprintln!("skipping e2e test: {why} (set REGATE_REQUIRE_TOOLS=1 to fail instead)");
    None
}

/// Where the harness binary is built: `<target dir>/e2e/testenv`.
pub fn testenv_path() -> PathBuf {
    let regate = PathBuf::from(env!("CARGO_BIN_EXE_regate"));
    regate
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("target"))
        .join("e2e")
        .join("testenv")
}

fn newest_source(dir: &Path) -> std::time::SystemTime {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".go") || name.ends_with(".sh") || name == "go.mod" || name == "go.sum"
        })
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// The harness binary, built with `go build` when missing or older than its sources.
pub fn testenv() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let src = root().join("tests/e2e");
        let out = testenv_path();
        let fresh = std::fs::metadata(&out)
            .and_then(|m| m.modified())
            .map(|built| built >= newest_source(&src))
            .unwrap_or(false);
        if fresh {
            return Ok(out);
        }
        let started = Instant::now();
        let status = Command::new("bash")
            .arg(src.join("build.sh"))
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {
                eprintln!(
                    "built {} in {:.0}s",
                    out.display(),
                    started.elapsed().as_secs_f64()
                );
                Ok(out)
            }
            Ok(s) => Err(format!("`go build` in tests/e2e failed ({s})")),
            Err(e) => Err(format!(
                "cannot run `go` ({e}); install Go 1.26 (see .ci/run)"
            )),
        }
    });
    match result {
        Ok(p) => Some(p.clone()),
        Err(why) => unavailable(why.clone()),
    }
}

/// Output of a kubectl run.
#[derive(Debug)]
pub struct Kubectl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    fn from(out: Output) -> Kubectl {
        Kubectl {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// stdout as JSON (for `-o json`).
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "kubectl output is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A running control plane; stopped (SIGTERM, then killed) on drop.
pub struct ControlPlane {
    child: Mutex<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub ca_file: PathBuf,
    binary: PathBuf,
    events: Arc<Mutex<Vec<String>>>,
}

impl ControlPlane {
    /// Starts `testenv up` and waits for its READY line (up to 4 minutes: a cold start on 2 busy cores).
    pub fn start() -> Option<ControlPlane> {
        let binary = testenv()?;
        let dir = tempfile::Builder::new()
            .prefix("regate-e2e-")
            .tempdir()
            .unwrap();
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .args(["up", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn testenv up");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[testenv] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[testenv] {line}");
            }
        });
        let ready = loop {
            if let Some(line) = events
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with("READY "))
            {
                break line["READY ".len()..].to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("kube-apiserver.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "testenv up exited with {status} before it was ready; kube-apiserver log tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "the control plane was not ready within 240 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let info: Json = serde_json::from_str(&ready).unwrap();
        eprintln!(
            "control plane ready in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Some(ControlPlane {
            child: Mutex::new(child),
            kubeconfig: PathBuf::from(info["kubeconfig"].as_str().unwrap()),
            server: info["server"].as_str().unwrap().to_string(),
            ca_file: PathBuf::from(info["caFile"].as_str().unwrap()),
            dir,
            binary,
            events,
        })
    }

    /// Runs kubectl (v1.37, the harness's) with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Kubectl {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `stdin` piped in (`-f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Kubectl {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        Kubectl::from(child.wait_with_output().unwrap())
    }

    /// Runs kubectl and panics unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.ok(),
            "kubectl {} failed ({}):\n{}{}",
            args.join(" "),
            out.code,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// `kubectl apply -f -` of `docs` (JSON objects), panicking on failure.
    pub fn apply(&self, docs: &[Json]) {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
        let out = self.kubectl_stdin(&["apply", "-f", "-"], Some(&list.to_string()));
        assert!(
            out.ok(),
            "kubectl apply failed:\n{}{}",
            out.stdout,
            out.stderr
        );
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.lock().unwrap().id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success());
    }

    fn wait_event(&self, event: &str, after: usize, timeout: Duration) {
        let started = Instant::now();
        loop {
            if self.events.lock().unwrap()[after..]
                .iter()
                .any(|l| l == event)
            {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "testenv did not report {event} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the API server (etcd and the controller manager keep running).
    pub fn stop_apiserver(&self) {
        let seen = self.events.lock().unwrap().len();
        self.signal("-USR1");
        self.wait_event("APISERVER STOPPED", seen, Duration::from_secs(60));
    }

    /// Starts the API server again on the same port and waits until it is ready.
    pub fn start_apiserver(&self) {
        let seen = self.events.lock().unwrap().len();
        self.signal("-USR2");
        self.wait_event("APISERVER READY", seen, Duration::from_secs(180));
    }

    /// Path of a component log (`kube-apiserver.log`, `kube-controller-manager.log`, `etcd.log`).
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

// --- the chart -----------------------------------------------------------------------------------

/// Renders `charts/regate` (release `regate`, namespace `regate-system`) with `scripts/render_chart.py`
/// and `--set` expressions; returns the documents as JSON.
pub fn render_chart(sets: &[String]) -> Vec<Json> {
    let mut cmd = Command::new("python3");
    cmd.arg("scripts/render_chart.py")
        .args(["--name", "regate", "--namespace", "regate-system"])
        .current_dir(root());
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.output().expect("run scripts/render_chart.py");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("helm_python is not installed") {
            unavailable::<()>(format!("helm-python-sdk is missing: {stderr}"));
        }
        panic!("render_chart.py failed: {stderr}");
    }
    yaml_documents(&String::from_utf8(out.stdout).unwrap())
}

/// The documents of a multi-document YAML stream, as JSON, read as regate (and kubectl) read manifests
/// (empty documents dropped).
pub fn yaml_documents(text: &str) -> Vec<Json> {
    regate::manifest::decode_stream(text)
        .into_iter()
        .map(|d| d.value.unwrap_or_else(|e| panic!("line {}: {e}", d.line)))
        .filter(|v| !v.is_null())
        .collect()
}

pub fn kind_of(doc: &Json) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// --- regate registered as the cluster's webhook -----------------------------------------------------

/// regate serving the control plane: its process, how it was started, and what it was given.
pub struct Regate {
    pub server: Option<Server>,
    pub port: u16,
    pub ca: TestCa,
    pub tls_dir: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub config: PathBuf,
    pub extra_args: Vec<String>,
    /// The rendered chart (URL mode).
    pub chart: Vec<Json>,
}

/// The kinds of the rendered chart that register regate with the API server.
pub const WEBHOOK_KINDS: &[&str] = &[
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

impl Regate {
    /// Installs the chart's in-cluster part (namespace, ServiceAccount, RBAC, policies ConfigMap), starts
    /// `regate serve --cluster-state kube` as the chart's ServiceAccount, waits for `/readyz`, then
    /// registers the rendered webhook configurations and waits until the API server calls regate.
    pub fn install(cp: &ControlPlane, extra_args: &[&str]) -> Regate {
        let regate = Regate::start_unregistered(cp, extra_args, &[]);
        regate.wait_ready(Duration::from_secs(60));
        regate.register(cp);
        regate
    }

    /// Like [`Regate::install`], without registering the webhooks; `sets` are extra chart values.
    pub fn start_unregistered(cp: &ControlPlane, extra_args: &[&str], sets: &[&str]) -> Regate {
        let port = free_port();
        let ca = TestCa::new("regate e2e webhook CA");
        let pair = ca.issue("regate.regate-system.svc");
        let tls_dir = tempfile::tempdir().unwrap();
        server_common::write_k8s_secret_dir(tls_dir.path(), &pair, "v1");
        let ca_b64 = base64_encode(ca.pem().as_bytes());
        let mut values = vec![
            format!("webhook.url=https://127.0.0.1:{port}"),
            format!("tls.caBundle={ca_b64}"),
        ];
        values.extend(sets.iter().map(|s| s.to_string()));
        let chart = render_chart(&values);

        let _ = cp.kubectl(&["create", "namespace", "regate-system"]);
        let in_cluster: Vec<Json> = chart
            .iter()
            .filter(|d| !WEBHOOK_KINDS.contains(&kind_of(d)))
            .cloned()
            .collect();
        cp.apply(&in_cluster);

        let work = tempfile::tempdir().unwrap();
        // The chart's regate.yaml layer, as the Deployment mounts it for --config.
        let config = work.path().join("regate.yaml");
        let configmap = chart
            .iter()
            .find(|d| kind_of(d) == "ConfigMap" && d["metadata"]["name"] == "regate-config")
            .expect("the chart renders the regate-config ConfigMap");
        std::fs::write(&config, configmap["data"]["regate.yaml"].as_str().unwrap()).unwrap();

        // The chart's ServiceAccount, through a TokenRequest: regate sees exactly what its RBAC allows.
        let token = cp.kubectl_ok(&[
            "create",
            "token",
            "regate",
            "-n",
            "regate-system",
            "--duration=24h",
        ]);
        let ca_data = base64_encode(&std::fs::read(&cp.ca_file).unwrap());
        let kubeconfig = work.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority-data: {ca_data}\nusers:\n- name: regate\n  user:\n    token: {}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: regate}}\ncurrent-context: e2e\n",
                cp.server,
                token.trim()
            ),
        )
        .unwrap();

        let mut regate = Regate {
            server: None,
            port,
            ca,
            tls_dir,
            work,
            kubeconfig,
            config,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            chart,
        };
        regate.start();
        regate
    }

    /// The `regate serve` arguments the chart's Deployment uses, in URL mode on 127.0.0.1.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "serve".to_string(),
            format!("--addr=127.0.0.1:{}", self.port),
            format!("--tls-dir={}", self.tls_dir.path().display()),
            format!("--config={}", self.config.display()),
            "--cluster-state=kube".to_string(),
            "--cluster-rediscover-interval=2s".to_string(),
            "--log-format=text".to_string(),
        ]
        .into();
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Starts (or restarts) the regate process on the same port.
    pub fn start(&mut self) {
        let args = self.args();
        let env = [("KUBECONFIG", self.kubeconfig.as_os_str())];
        self.server = Some(Server::start_with_env(&args, &self.ca.pem(), &env));
    }

    /// Stops the regate process (SIGKILL: the API server sees connections refused).
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("regate is running")
    }

    /// `GET /readyz` status.
    pub fn readyz(&self) -> (u16, String) {
        let mut client = self.server().client();
        match client.try_request("GET", "/readyz", &[], b"") {
            Ok(r) => (r.status, r.text()),
            Err(e) => (0, e.to_string()),
        }
    }

    pub fn wait_ready(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let (status, body) = self.readyz();
            if status == 200 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "regate not ready within {timeout:?}: {status} {body}\n{}",
                self.server().stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The webhook configurations from the rendered chart.
    pub fn webhook_configurations(&self) -> Vec<Json> {
        self.chart
            .iter()
            .filter(|d| WEBHOOK_KINDS.contains(&kind_of(d)))
            .cloned()
            .collect()
    }

    /// Registers the rendered webhook configurations and waits until the API server calls regate
    /// (a server-side dry-run that regate denies).
    pub fn register(&self, cp: &ControlPlane) {
        cp.apply(&self.webhook_configurations());
        // A privileged Pod from Docker Hub in `default`: regate denies it for anyone, the admin included.
        let probe = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "regate-e2e-probe", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}
        });
        let started = Instant::now();
        loop {
            let out = cp.kubectl_stdin(
                &["create", "--dry-run=server", "-f", "-"],
                Some(&probe.to_string()),
            );
            if out
                .stderr
                .contains("admission webhook \"validate.regate.dev\" denied")
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the API server does not call regate: {}{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Decision-log lines (JSON), once the log is quiet: a dedicated thread writes them after the
    /// answer, so the lines of the request kubectl just finished may still be on their way. Waits until
    /// no line has arrived for 150 ms (at most 3 s).
    pub fn decisions(&self) -> Vec<Json> {
        let started = Instant::now();
        let mut count = self.server().stdout_lines().len();
        let mut quiet_since = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(25));
            let now = self.server().stdout_lines().len();
            if now != count {
                count = now;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= Duration::from_millis(150) {
                break;
            }
        }
        self.server()
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Regate {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// kubectl arguments: an identity (`--as`, `--as-group`) before a command.
pub fn with<'a>(identity: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    identity.iter().chain(args.iter()).copied().collect()
}

/// A Namespace, with the tenant label when `tenant` is given.
pub fn namespace(name: &str, tenant: Option<&str>) -> Json {
    let mut ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if let Some(t) = tenant {
        ns["metadata"]["labels"] = serde_json::json!({"regate.dev/tenant": t});
    }
    ns
}

/// A pod spec of tenant `shop` that every policy of the bundled library accepts; with `privileged`, its
/// container is privileged and may escalate (what pod-security denies).
pub fn compliant_pod_spec(privileged: bool) -> Json {
    let mut spec = serde_json::json!({
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app",
            "image": "harbor.example.eu/shop/app:1.0.0@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"cpu": "200m", "memory": "256Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}}
        }]
    });
    if privileged {
        let context = &mut spec["containers"][0]["securityContext"];
        context["allowPrivilegeEscalation"] = Json::Bool(true);
        context["privileged"] = Json::Bool(true);
    }
    spec
}

/// A RoleBinding of the group `tenant:<group_tenant>` to the ClusterRole `role` in `ns`, labelled with
/// `ns_tenant` (objects in a tenant's namespace carry its label, the platform's included).
pub fn tenant_binding(
    name: &str,
    ns: &str,
    ns_tenant: &str,
    role: &str,
    group_tenant: &str,
) -> Json {
    serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns, "labels": {"regate.dev/tenant": ns_tenant}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                      "name": format!("tenant:{group_tenant}")}]})
}

/// A namespace of tenant `shop` that the group `tenant:shop` administers.
pub fn shop_namespace(ns: &str) -> Vec<Json> {
    vec![
        namespace(ns, Some("shop")),
        tenant_binding("tenant-shop-admin", ns, "shop", "admin", "shop"),
    ]
}

/// Runs scenarios in order, each under `catch_unwind`, so that one failure does not hide the others;
/// [`Scenarios::finish`] fails the test listing every failed scenario.
#[derive(Default)]
pub struct Scenarios {
    failed: Vec<String>,
}

impl Scenarios {
    pub fn run(&mut self, name: &str, f: impl FnOnce()) {
        eprintln!("=== scenario: {name}");
        let started = Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => eprintln!(
                "=== scenario {name}: ok ({:.1}s)",
                started.elapsed().as_secs_f64()
            ),
            Err(_) => {
                eprintln!("=== scenario {name}: FAILED");
                self.failed.push(name.to_string());
            }
        }
    }

    /// Panics naming the failed scenarios, if any; `context` is added to the message.
    pub fn finish(self, context: &str) {
        assert!(
            self.failed.is_empty(),
            "failed scenarios: {:?} ({context})",
            self.failed
        );
    }
}

/// Polls `f` every 50 ms until it returns `Some`, up to `timeout`; returns the value and the time taken.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, started.elapsed());
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
