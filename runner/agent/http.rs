//! The agent's HTTP endpoints on `listen_address`: `/metrics` for
//! Prometheus, `/health` (alive) and `/health/ready` (taking jobs), and
//! `/debug/jobs/list` (the jobs running now).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the endpoints show; implemented by the daemon.
pub trait StatusSource: Send + Sync + 'static {
    /// The Prometheus text of every metric.
    fn metrics(&self) -> String;
    /// Whether the agent takes jobs (not stopping, configuration loaded).
    fn ready(&self) -> bool;
    /// One line per running job.
    fn jobs(&self) -> String;
}

/// `listen_address` as gitlab-runner reads it: a bare host gets port 9252.
pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::{IpAddr, ToSocketAddrs};
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let with_port = if text.contains(':') {
        text.to_owned()
    } else {
        format!("{text}:{DEFAULT_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("listen_address {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("listen_address {text:?} resolves to no address"))
}

/// gitlab-runner's metrics port.
const DEFAULT_PORT: u16 = 9252;

/// Serves until `stop` is cancelled.
pub async fn serve(listener: TcpListener, source: Arc<dyn StatusSource>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: try again shortly
            // rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let source = Arc::clone(&source);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let source = Arc::clone(&source);
                async move { Ok::<_, Infallible>(respond(&req, source.as_ref())) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(req: &Request<Incoming>, source: &dyn StatusSource) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        );
    }
    let head = req.method() == Method::HEAD;
    let mut response = match req.uri().path() {
        "/metrics" => {
            let mut r = text(StatusCode::OK, source.metrics());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        "/health" => text(StatusCode::OK, "ok\n".into()),
        "/health/ready" => {
            if source.ready() {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into())
            }
        }
        "/debug/jobs/list" => text(StatusCode::OK, source.jobs()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed(AtomicBool);

    impl StatusSource for Fixed {
        fn metrics(&self) -> String {
            "gitlab_runner_concurrent 3\n".into()
        }
        fn ready(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
        fn jobs(&self) -> String {
            "id=1 state=running\n".into()
        }
    }

    async fn get(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn a_bare_host_gets_the_default_port() {
        assert_eq!(listen_addr("127.0.0.1").unwrap().port(), 9252);
        assert_eq!(listen_addr("127.0.0.1:9999").unwrap().port(), 9999);
        assert_eq!(listen_addr("::1").unwrap().port(), 9252);
        assert_eq!(listen_addr("[::1]:8080").unwrap().port(), 8080);
        assert!(listen_addr("127.0.0.1:notaport").is_err());
    }

    #[tokio::test]
    async fn metrics_health_and_readiness_are_served() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let source = Arc::new(Fixed(AtomicBool::new(true)));
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, source.clone(), stop.clone()));

        let metrics = get(addr, "GET", "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("text/plain; version=0.0.4"));
        assert!(metrics.ends_with("gitlab_runner_concurrent 3\n"));
        assert!(
            get(addr, "GET", "/health")
                .await
                .starts_with("HTTP/1.1 200")
        );
        assert!(get(addr, "GET", "/health/ready").await.ends_with("ready\n"));
        source.0.store(false, Ordering::SeqCst);
        assert!(
            get(addr, "GET", "/health/ready")
                .await
                .starts_with("HTTP/1.1 503")
        );
        let head = get(addr, "HEAD", "/metrics").await;
        assert!(head.starts_with("HTTP/1.1 200") && !head.contains("gitlab_runner"));
        assert!(get(addr, "GET", "/nope").await.starts_with("HTTP/1.1 404"));
        assert!(
            get(addr, "POST", "/metrics")
                .await
                .starts_with("HTTP/1.1 405")
        );

        stop.cancel();
        server.await.unwrap();
    }
}
