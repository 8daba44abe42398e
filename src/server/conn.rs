//! Connections: accept (bounded count), TLS handshake under a timeout (a client speaking plain HTTP to
//! the TLS port gets a plain `400` JSON answer instead of a TLS alert), then HTTP/1.1 with keep-alive
//! served by hyper. On shutdown every connection is closed gracefully: an idle keep-alive connection
//! at once, a busy one after its response.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::Shared;

/// Time a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle keep-alive connection may wait for its next request (also the bound on sending
/// request headers). Above Go's default `IdleConnTimeout` (90 s) of the API server's client, so the
/// server is not the side that closes a connection the client is about to reuse.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(95);

/// Accepts connections until `close` turns true.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shared: Arc<Shared>,
    mut close: watch::Receiver<bool>,
    conns: mpsc::Sender<()>,
) {
    let limit = Arc::new(Semaphore::new(shared.options.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = super::signalled(&mut close) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let router = router.clone();
        let shared = shared.clone();
        let close = close.clone();
        let guard = conns.clone();
        tokio::spawn(async move {
            let _guard = (guard, permit);
            handle(tcp, tls, router, shared, close).await;
        });
    }
}

async fn handle(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    shared: Arc<Shared>,
    mut close: watch::Receiver<bool>,
) {
    let Some(acceptor) = tls else {
        serve_http(tcp, router, &shared, close).await;
        return;
    };
    let handshake = async {
        let mut first = [0u8; 1];
        let n = tcp.peek(&mut first).await?;
        if n == 1 && first[0].is_ascii_alphabetic() {
            return Ok::<_, std::io::Error>(Err(tcp));
        }
        Ok(Ok(acceptor.accept(tcp).await?))
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => r,
        _ = super::signalled(&mut close) => return,
    };
    match outcome {
        Ok(Ok(Ok(stream))) => serve_http(stream, router, &shared, close).await,
        Ok(Ok(Err(plain))) => {
            shared.metrics.bad_request("plain_http");
            answer_plain_http(plain).await;
        }
        Ok(Err(err)) => {
            shared.metrics.tls_handshake_failures.inc();
            tracing::debug!(error = %err, "TLS handshake failed");
        }
        Err(_) => {
            shared.metrics.tls_handshake_failures.inc();
            tracing::debug!("TLS handshake timed out");
        }
    }
}

/// Answers a plain-HTTP request on the TLS port with a 400 and closes.
async fn answer_plain_http(mut tcp: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await;
    let body = r#"{"error":"this port speaks HTTPS; plain HTTP is not served","reason":"plain_http","status":400}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

async fn serve_http<IO>(io: IO, router: Router, shared: &Shared, mut close: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(err) = r {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        }
        _ = super::signalled(&mut close) => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(shared.options.shutdown_timeout, conn.as_mut()).await {
                Ok(_) => {}
                Err(_) => tracing::warn!("connection still busy at the shutdown timeout; closing"),
            }
        }
    }
}
