//! Helpers for the `regate serve` integration tests: certificates made in the test (rcgen), the real
//! binary started on 127.0.0.1 port 0 (its bound address read from the log), and a small blocking
//! HTTPS/1.1 client on rustls (ring) that trusts the test CA, reuses keep-alive connections and shows
//! which certificate the server presented. The repository root and the shared corpus are found with
//! `tests/common` (`common::root()`, `common::corpus()`); a target that needs them declares `mod common;`
//! too.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

// --- certificates ---------------------------------------------------------------------------------

/// A test CA that issues ECDSA P-256 serving certificates.
pub struct TestCa {
    pub cert: rcgen::Certificate,
    pub key: rcgen::KeyPair,
}

/// A PEM certificate chain and key.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A serving certificate for localhost/127.0.0.1 with common name `cn`.
    pub fn issue(&self, cn: &str) -> Pair {
        self.issue_with(cn, rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mTLS tests).
    pub fn issue_client(&self, cn: &str) -> Pair {
        self.issue_with(cn, rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue_with(&self, cn: &str, eku: rcgen::ExtendedKeyUsagePurpose) -> Pair {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Writes `pair` into `dir` with the layout of a mounted Kubernetes Secret: `..<version>/tls.{crt,key}`,
/// `..data -> ..<version>`, `tls.crt -> ..data/tls.crt`. Later calls swap `..data` atomically (a
/// symlink renamed over the old one), as the kubelet does when cert-manager rotates the Secret.
pub fn write_k8s_secret_dir(dir: &Path, pair: &Pair, version: &str) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).unwrap();
    std::fs::write(versioned.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(versioned.join("tls.key"), &pair.key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

/// A TLS directory with a fresh pair from a fresh CA; returns (tempdir, CA PEM, pair).
pub fn tls_dir(cn: &str) -> (tempfile::TempDir, TestCa, Pair) {
    let ca = TestCa::new("regate test CA");
    let pair = ca.issue(cn);
    let dir = tempfile::tempdir().unwrap();
    write_k8s_secret_dir(dir.path(), &pair, "v1");
    (dir, ca, pair)
}

// --- the server process ----------------------------------------------------------------------------

/// A running `regate serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub ca_pem: String,
}

fn pump<R: Read + Send + 'static>(reader: R, sink: Arc<Mutex<Vec<String>>>, echo: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[server] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
}

fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_string())
}

/// Base arguments of a test server on a free port with the basic fixture bundle and static state.
pub fn basic_args(tls_dir: &Path) -> Vec<String> {
    owned_args(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--tls-dir",
            tls_dir.to_str().unwrap(),
            "--no-bundled",
            "--policies",
            "testdata/bundles/basic",
            "--cluster-state",
            "static",
        ],
        &[],
    )
}

/// `base` followed by `extra`, as the owned arguments [`Server::start`] takes.
pub fn owned_args(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

impl Server {
    /// Starts `regate serve --dev` on a free loopback port with the decision log off and `extra`
    /// arguments, trusting the CA it generated (written before it listens). The directory holding the
    /// CA is returned with the server and must live as long as it.
    pub fn start_dev(extra: &[&str]) -> (Server, tempfile::TempDir) {
        let work = tempfile::tempdir().unwrap();
        let ca_file = work.path().join("ca.crt");
        let args = owned_args(
            &[
                "serve",
                "--dev",
                "--addr",
                "127.0.0.1:0",
                "--dev-ca-file",
                ca_file.to_str().unwrap(),
                "--decision-log",
                "off",
            ],
            extra,
        );
        let mut server = Server::start(&args, "");
        server.ca_pem = std::fs::read_to_string(&ca_file).unwrap();
        (server, work)
    }

    /// Starts `regate ARGS` and waits (up to 120 s) for its `regate serve listening` line.
    pub fn start(args: &[String], ca_pem: &str) -> Server {
        Server::start_with_env(args, ca_pem, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(
        args: &[String],
        ca_pem: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Server {
        // Another build can be tested with the same tests (e.g. to record what an older one exposes).
        let binary = std::env::var_os("REGATE_TEST_BINARY")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_regate").into());
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn regate serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        pump(child.stderr.take().unwrap(), stderr.clone(), true);
        pump(child.stdout.take().unwrap(), stdout.clone(), false);
        let started = Instant::now();
        loop {
            let listening = stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains("regate serve listening"))
                .cloned();
            if let Some(line) = listening {
                let addr = field(&line, "addr").unwrap().parse().unwrap();
                let metrics_addr = field(&line, "metrics_addr")
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap());
                return Server {
                    child,
                    addr,
                    metrics_addr,
                    stderr,
                    stdout,
                    ca_pem: ca_pem.to_string(),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "regate serve exited early with {status}:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "regate serve did not start:\n{}",
                stderr.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client trusting this server's CA.
    pub fn client(&self) -> Client {
        Client::new(self.addr, &self.ca_pem)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (up to `timeout`); returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if started.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a stderr line contains `needle` (up to `timeout`).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The /metrics text.
    pub fn metrics(&self) -> String {
        let resp = self.client().get("/metrics");
        assert_eq!(resp.status, 200);
        resp.text()
    }

    /// The value of one metric series (`name{labels}` exactly as exposed), or 0.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `series` in a metrics text, or 0.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

// --- the HTTPS client ------------------------------------------------------------------------------

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A blocking HTTPS/1.1 client with one keep-alive connection.
pub struct Client {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    conn: Option<Tls>,
}

/// A client configuration trusting `ca_pem` (and presenting `client` when given).
pub fn client_config(ca_pem: &str, client: Option<&Pair>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(pair) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
                    .map(|c| c.unwrap())
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Like Go's default client (the API server's): no session resumption, so every new connection
    // sees the server's current certificate.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

impl Client {
    pub fn new(addr: SocketAddr, ca_pem: &str) -> Client {
        Client::with_config(addr, client_config(ca_pem, None))
    }

    pub fn with_config(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
        Client {
            addr,
            config,
            conn: None,
        }
    }

    /// Opens a new TLS connection (completing the handshake).
    pub fn connect(&mut self) -> std::io::Result<()> {
        let tcp = TcpStream::connect(self.addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.conn = Some(tls);
        Ok(())
    }

    /// Drops the current connection (the next request opens a new one).
    pub fn reset(&mut self) {
        self.conn = None;
    }

    /// Common name of the certificate the server presented on the current connection.
    pub fn peer_common_name(&mut self) -> String {
        if self.conn.is_none() {
            self.connect().unwrap();
        }
        let conn = self.conn.as_ref().unwrap();
        let certs = conn.conn.peer_certificates().unwrap();
        common_name(certs[0].as_ref())
    }

    /// Sends one request on the keep-alive connection (opening one if needed).
    pub fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        if self.conn.is_none() {
            self.connect()?;
        }
        let tls = self.conn.as_mut().unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let result = (|| {
            tls.write_all(head.as_bytes())?;
            tls.write_all(body)?;
            tls.flush()?;
            read_response(tls, method == "HEAD")
        })();
        match result {
            Ok(resp) => {
                if resp
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    self.conn = None;
                }
                Ok(resp)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// POSTs `body` as `application/json` with chunked transfer encoding (no Content-Length).
    pub fn try_chunked(&mut self, path: &str, body: &[u8]) -> std::io::Result<Response> {
        if self.conn.is_none() {
            self.connect()?;
        }
        let tls = self.conn.as_mut().unwrap();
        let result = (|| {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            tls.write_all(head.as_bytes())?;
            for chunk in body.chunks(64 * 1024) {
                tls.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                tls.write_all(chunk)?;
                tls.write_all(b"\r\n")?;
            }
            tls.write_all(b"0\r\n\r\n")?;
            tls.flush()?;
            read_response(tls, false)
        })();
        self.conn = None;
        result
    }

    /// Writes `bytes` as they are (a hand-made request) and reads one response.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<Response> {
        if self.conn.is_none() {
            self.connect()?;
        }
        let tls = self.conn.as_mut().unwrap();
        let result = (|| {
            tls.write_all(bytes)?;
            tls.flush()?;
            read_response(tls, false)
        })();
        self.conn = None;
        result
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// POSTs an AdmissionReview as `application/json`.
    pub fn post_json(&mut self, path: &str, body: &[u8]) -> Response {
        self.request("POST", path, &[("Content-Type", "application/json")], body)
    }
}

fn read_response<R: Read>(stream: &mut R, head_only: bool) -> std::io::Result<Response> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        buf.push(byte[0]);
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("response head too large"));
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    stream.read_exact(&mut body)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The subject common name of a DER certificate (good enough for rcgen's certificates).
pub fn common_name(der: &[u8]) -> String {
    // The CN attribute: OID 2.5.4.3 (06 03 55 04 03) followed by a string (UTF8String or
    // PrintableString). The subject comes after the issuer, so take the last occurrence.
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let pos = der
        .windows(oid.len())
        .rposition(|w| w == oid)
        .expect("certificate has a CN");
    let len = der[pos + oid.len() + 1] as usize;
    let start = pos + oid.len() + 2;
    String::from_utf8_lossy(&der[start..start + len]).to_string()
}

/// Sends raw bytes over plain TCP and returns what came back (until close or 5 s).
pub fn raw_tcp(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    out
}

// --- reviews ---------------------------------------------------------------------------------------

/// An AdmissionReview v1 around `request`.
pub fn review(request: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
    .unwrap()
}

/// A Pod CREATE request in namespace `shop` with one container using `image`.
pub fn pod_request(uid: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["tenant:shop"]},
        "object": {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "shop", "labels": {"owner": "a"}},
                   "spec": {"containers": [{"name": "app", "image": image}]}},
        "oldObject": null,
        "dryRun": false
    })
}
