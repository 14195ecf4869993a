//! A TCP port in front of the local daemon's unix socket: the daemon as
//! a remote one is reached (`tcp://127.0.0.1:<port>`), with faults on
//! demand to break the archive API's transfers half-way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::JoinHandle;

/// The daemon's socket the forwarder connects to.
const SOCKET: &str = "/var/run/docker.sock";

/// What the forwarder breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Nothing: every byte passes.
    None,
    /// A connection carrying an archive upload (`PUT .../archive`) is
    /// closed as soon as the request is seen.
    DropUpload,
    /// A connection carrying an archive download (`GET .../archive`) is
    /// closed after this many bytes of the answer.
    CutDownload(usize),
}

/// Forwards 127.0.0.1:<port> to the daemon's socket until dropped.
pub(crate) struct Forwarder {
    port: u16,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Forwarder {
    pub async fn start(fault: Fault) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(forward(tcp, fault));
            }
        });
        Forwarder {
            port,
            connections,
            task,
        }
    }

    /// The daemon address to give the executor.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// How many connections came in so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(tcp: TcpStream, fault: Fault) {
    let Ok(unix) = UnixStream::connect(SOCKET).await else {
        return;
    };
    let (mut tcp_in, mut tcp_out) = tcp.into_split();
    let (mut unix_in, mut unix_out) = unix.into_split();
    let download_seen = Arc::new(AtomicBool::new(false));
    let seen = download_seen.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match tcp_in.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = unix_out.shutdown().await;
                    // The answer may still be on its way.
                    return std::future::pending::<()>().await;
                }
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if is_archive_request(chunk, b"PUT ") && fault == Fault::DropUpload {
                return;
            }
            if is_archive_request(chunk, b"GET ") {
                seen.store(true, Ordering::Relaxed);
            }
            if unix_out.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut passed = 0usize;
        loop {
            let n = match unix_in.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tcp_out.shutdown().await;
                    return;
                }
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            let limit = match fault {
                Fault::CutDownload(limit) if download_seen.load(Ordering::Relaxed) => Some(limit),
                _ => None,
            };
            if let Some(limit) = limit {
                let room = limit.saturating_sub(passed);
                if chunk.len() >= room {
                    chunk = &chunk[..room];
                    let _ = tcp_out.write_all(chunk).await;
                    return;
                }
                passed += chunk.len();
            }
            if tcp_out.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends the connection (both halves dropped).
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// True when `chunk` starts a request of `method` on a container's
/// archive endpoint.
fn is_archive_request(chunk: &[u8], method: &[u8]) -> bool {
    chunk.starts_with(method) && chunk.windows(9).any(|w| w == b"/archive?")
}
