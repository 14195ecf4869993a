//! A fake GitLab for tests: a real HTTP/1.1 server on `127.0.0.1` that
//! answers the runner API as runner-api.md §2–§7 describe, keeps state
//! (runners, a job queue, traces, final updates, artifacts) and lets a
//! test script faults.
//!
//! ```ignore
//! let gitlab = FakeGitLab::start().await;
//! let token = gitlab.create_runner();              // a `glrt-` token
//! let job = gitlab.push_job(fixture_job(1, "glcbt-x")); // queued for polls
//! gitlab.fail_next(Endpoint::RequestJob, 1, Fault::status(502));
//! let client = ApiClient::new(&gitlab.url())?;
//! // ... drive the client ...
//! assert_eq!(gitlab.trace(job), b"...");
//! assert!(gitlab.requests_to(Endpoint::PatchTrace).len() > 1);
//! ```
//!
//! What it enforces: runner tokens on runner calls (403), job tokens on job
//! calls (403), `Content-Range` on trace patches (400 when missing, 416
//! with `Range: 0-<size>` when it does not start at the stored size),
//! states on job updates (400), the CRC-32 of the stored trace on final
//! updates (recorded, like GitLab, not refused). It answers with
//! `Job-Status`, `X-GitLab-Last-Update` and, when set,
//! `X-GitLab-Trace-Update-Interval`.
//!
//! Jobs: `push_job` queues a payload as `pending`; a poll hands it out and
//! makes it `running`; an accepted final update makes it `success` or
//! `failed` (`canceled` when it was `canceling`), after which GitLab takes
//! no more trace or updates for it (403). Artifacts are downloaded with the
//! job's own token or the token of any running job, as GitLab allows.
//!
//! Faults a test can script: the next N requests to an endpoint answer a
//! status (with headers, such as `Retry-After`) or drop the connection; a
//! job switches status after K trace bytes; final updates answer 202 N
//! times; a poll is held (long polling); the server stops and restarts on
//! the same port, keeping its state.

// Spelled out so the benches can include this file with `#[path]` too (a
// file included that way looks for its modules beside itself).
#[path = "fake_gitlab/handlers.rs"]
mod handlers;
#[path = "fake_gitlab/multipart.rs"]
mod multipart;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The registration token `POST /runners` accepts.
pub const REGISTRATION_TOKEN: &str = "GR1348941FakeRegistrationTok";

/// The API endpoints, for faults and request filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Register,
    Verify,
    Unregister,
    UnregisterManager,
    ResetToken,
    RequestJob,
    UpdateJob,
    PatchTrace,
    UploadArtifacts,
    DownloadArtifacts,
    /// `GET /object-storage/...`, where direct downloads are redirected.
    ObjectStorage,
}

/// A scripted answer that replaces the normal one.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status, headers and body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Close the connection without answering.
    Drop,
}

impl Fault {
    /// `status` with a GitLab-style JSON message.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: format!(r#"{{"message":"{status} fault"}}"#),
        }
    }

    /// Adds a header to a status fault.
    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        if let Fault::Status { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Replaces a status fault's body.
    pub fn with_body(mut self, text: &str) -> Fault {
        if let Fault::Status { body, .. } = &mut self {
            *body = text.to_owned();
        }
        self
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub query: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub endpoint: Option<Endpoint>,
    /// When its body had arrived whole.
    pub at: Instant,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A decoded query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        query_pairs(&self.query)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// An artifact upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub file_name: String,
    pub artifact_type: String,
    pub artifact_format: String,
    pub expire_in: Option<String>,
    pub content: Vec<u8>,
}

/// A runner GitLab knows.
#[derive(Debug, Clone)]
pub struct RunnerRecord {
    pub id: u64,
    pub token: String,
    /// The `POST /runners` body it was registered with, if any.
    pub registration: Option<Value>,
    /// System ids of its managers (hosts that verified or polled).
    pub managers: Vec<String>,
    pub orphaned: bool,
}

/// A job and everything the runner sent about it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: u64,
    pub token: String,
    pub payload: Value,
    /// `pending`, `running`, `canceling`, `canceled`, `success`, `failed`.
    pub status: String,
    pub trace: Vec<u8>,
    /// Every `PUT /jobs/:id` body, in order.
    pub updates: Vec<Value>,
    /// The final update GitLab accepted (200).
    pub final_update: Option<Value>,
    /// Whether its `output.checksum` matched the stored trace.
    pub checksum_matched: Option<bool>,
    pub artifacts: Vec<StoredArtifact>,
    /// Switch to `.1` once the trace has `.0` bytes.
    status_after_bytes: Option<(usize, String)>,
    /// Final updates still to answer with 202.
    accept_final: usize,
}

/// The server's state, behind one lock.
#[derive(Default)]
struct State {
    runners: Vec<RunnerRecord>,
    next_runner_id: u64,
    registration_disabled: bool,
    verify_plain_text: bool,
    queue: VecDeque<u64>,
    jobs: HashMap<u64, JobRecord>,
    queue_version: u64,
    long_poll: Duration,
    trace_update_interval: Option<u64>,
    final_update_interval: Option<u64>,
    object_storage: bool,
    max_artifact_size: Option<usize>,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    requests: Vec<RecordedRequest>,
}

impl State {
    fn last_update(&self) -> String {
        format!("queue-{}", self.queue_version)
    }
}

type Shared = Arc<Mutex<State>>;

/// The complete job payload of the spec's fixtures, as job `id` with job
/// token `token`.
pub fn fixture_job(id: u64, token: &str) -> Value {
    let mut job: Value = serde_json::from_str(include_str!("../fixtures/gitlab/job_response.json"))
        .expect("fixture");
    job["id"] = id.into();
    job["job_info"]["id"] = id.into();
    job["token"] = token.into();
    job
}

/// The fixture job `id` (job token `token`) made to run on a shell
/// executor without git: no image, services, cache, dependencies, hooks or
/// artifacts, `GIT_STRATEGY=empty`, and these scripts.
pub fn shell_job_payload(id: u64, token: &str, script: &[&str], after_script: &[&str]) -> Value {
    let mut job = fixture_job(id, token);
    job["image"] = Value::Null;
    job["services"] = serde_json::json!([]);
    job["cache"] = serde_json::json!([]);
    job["dependencies"] = serde_json::json!([]);
    job["hooks"] = serde_json::json!([]);
    job["artifacts"] = serde_json::json!([]);
    job["steps"] = serde_json::json!([
        { "name": "script", "script": script, "timeout": 3600, "when": "on_success", "allow_failure": false },
        { "name": "after_script", "script": after_script, "timeout": 3600, "when": "always", "allow_failure": true },
    ]);
    add_variable(&mut job, "GIT_STRATEGY", "empty", false);
    job
}

/// Appends a variable to a job payload's `variables`.
pub fn add_variable(job: &mut Value, key: &str, value: &str, masked: bool) {
    if let Some(variables) = job["variables"].as_array_mut() {
        variables.push(
            serde_json::json!({ "key": key, "value": value, "public": !masked, "masked": masked }),
        );
    }
}

/// A running (or stopped) fake GitLab.
pub struct FakeGitLab {
    state: Shared,
    addr: SocketAddr,
    server: tokio::sync::Mutex<Option<Server>>,
}

struct Server {
    shutdown: CancellationToken,
    accept: JoinHandle<()>,
}

impl FakeGitLab {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> FakeGitLab {
        let listener = bind("127.0.0.1:0".parse().expect("address")).await;
        let addr = listener.local_addr().expect("local address");
        let state: Shared = Arc::new(Mutex::new(State {
            next_runner_id: 1,
            ..State::default()
        }));
        let server = serve(listener, state.clone());
        FakeGitLab {
            state,
            addr,
            server: tokio::sync::Mutex::new(Some(server)),
        }
    }

    /// `http://127.0.0.1:<port>`, the `[[runners]] url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and closes every connection; the state stays.
    pub async fn stop(&self) {
        if let Some(server) = self.server.lock().await.take() {
            server.shutdown.cancel();
            let _ = server.accept.await;
        }
    }

    /// Listens again on the same port, with the same state.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = bind(self.addr).await;
        *self.server.lock().await = Some(serve(listener, self.state.clone()));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // --- runners ---

    /// A runner created in GitLab's UI: returns its `glrt-` token.
    pub fn create_runner(&self) -> String {
        let mut state = self.lock();
        handlers::new_runner(&mut state, None).token
    }

    pub fn runner(&self, token: &str) -> Option<RunnerRecord> {
        self.lock()
            .runners
            .iter()
            .find(|r| r.token == token)
            .cloned()
    }

    pub fn runners(&self) -> Vec<RunnerRecord> {
        self.lock().runners.clone()
    }

    /// `POST /runners` answers 410, as when registration tokens are off.
    pub fn set_registration_disabled(&self, disabled: bool) {
        self.lock().registration_disabled = disabled;
    }

    /// `POST /runners/verify` answers the plain `200` of older GitLabs.
    pub fn set_verify_plain_text(&self, plain: bool) {
        self.lock().verify_plain_text = plain;
    }

    /// The runner's calls answer 422.
    pub fn set_orphaned(&self, token: &str, orphaned: bool) {
        if let Some(r) = self.lock().runners.iter_mut().find(|r| r.token == token) {
            r.orphaned = orphaned;
        }
    }

    // --- the job queue ---

    /// Queues a job payload (its `id` and `token` are used as they are;
    /// a missing `id` gets one). Returns the id.
    pub fn push_job(&self, mut payload: Value) -> u64 {
        let mut state = self.lock();
        let id = match payload.get("id").and_then(Value::as_u64) {
            Some(id) => id,
            None => {
                let id = 1000 + state.jobs.len() as u64;
                payload["id"] = id.into();
                id
            }
        };
        let token = payload
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        state
            .jobs
            .insert(id, JobRecord::new(id, token, payload, "pending"));
        state.queue.push_back(id);
        state.queue_version += 1;
        id
    }

    /// A job that already ran (not queued), with an `archive` artifact, for
    /// dependency downloads.
    pub fn add_finished_job(&self, id: u64, token: &str, archive: &[u8]) {
        let mut job = JobRecord::new(id, token.to_owned(), Value::Null, "success");
        job.artifacts.push(StoredArtifact {
            file_name: "artifacts.zip".into(),
            artifact_type: "archive".into(),
            artifact_format: "zip".into(),
            expire_in: None,
            content: archive.to_vec(),
        });
        self.lock().jobs.insert(id, job);
    }

    /// The current `X-GitLab-Last-Update` value.
    pub fn last_update(&self) -> String {
        self.lock().last_update()
    }

    /// Holds empty polls this long before the 204 (Workhorse long polling).
    pub fn set_long_poll(&self, delay: Duration) {
        self.lock().long_poll = delay;
    }

    // --- jobs ---

    pub fn job(&self, id: u64) -> Option<JobRecord> {
        self.lock().jobs.get(&id).cloned()
    }

    pub fn job_status(&self, id: u64) -> Option<String> {
        self.lock().jobs.get(&id).map(|j| j.status.clone())
    }

    /// Sets a job's status (`canceling`, `canceled`, ...).
    pub fn set_job_status(&self, id: u64, status: &str) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.status = status.to_owned();
        }
    }

    /// Switches the job to `status` once its trace holds `bytes` bytes.
    pub fn status_after_trace_bytes(&self, id: u64, bytes: usize, status: &str) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.status_after_bytes = Some((bytes, status.to_owned()));
        }
    }

    /// The trace as stored.
    pub fn trace(&self, id: u64) -> Vec<u8> {
        self.job(id).map(|j| j.trace).unwrap_or_default()
    }

    /// Forgets all but the first `len` bytes of a job's trace, as a server
    /// that lost chunks would.
    pub fn truncate_trace(&self, id: u64, len: usize) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.trace.truncate(len);
        }
    }

    /// The next `times` final updates of the job answer 202.
    pub fn accept_final_after(&self, id: u64, times: usize) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.accept_final = times;
        }
    }

    /// `X-GitLab-Trace-Update-Interval` on trace and running-update answers
    /// (none by default).
    pub fn set_trace_update_interval(&self, secs: Option<u64>) {
        self.lock().trace_update_interval = secs;
    }

    /// `X-GitLab-Trace-Update-Interval` on 202 answers to final updates.
    pub fn set_final_update_interval(&self, secs: Option<u64>) {
        self.lock().final_update_interval = secs;
    }

    // --- artifacts ---

    pub fn artifacts(&self, id: u64) -> Vec<StoredArtifact> {
        self.job(id).map(|j| j.artifacts).unwrap_or_default()
    }

    /// Downloads with `direct_download=true` are redirected to
    /// `/object-storage/...` on this server.
    pub fn set_object_storage(&self, on: bool) {
        self.lock().object_storage = on;
    }

    /// Uploads larger than this answer 413.
    pub fn set_max_artifact_size(&self, bytes: Option<usize>) {
        self.lock().max_artifact_size = bytes;
    }

    // --- faults and records ---

    /// The next `times` requests to `endpoint` get `fault` instead of their
    /// answer (they are still recorded).
    pub fn fail_next(&self, endpoint: Endpoint, times: usize, fault: Fault) {
        let mut state = self.lock();
        let queue = state.faults.entry(endpoint).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.endpoint == Some(endpoint))
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

impl JobRecord {
    fn new(id: u64, token: String, payload: Value, status: &str) -> JobRecord {
        JobRecord {
            id,
            token,
            payload,
            status: status.to_owned(),
            trace: Vec::new(),
            updates: Vec::new(),
            final_update: None,
            checksum_matched: None,
            artifacts: Vec::new(),
            status_after_bytes: None,
            accept_final: 0,
        }
    }
}

/// A listener that can take the port of a server just stopped.
async fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    socket.listen(64).expect("listen")
}

fn serve(listener: TcpListener, state: Shared) -> Server {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let accept = tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = token.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let state = state.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| handlers::handle(state.clone(), request));
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                // Stopping drops the connection: the socket closes.
                tokio::select! {
                    _ = connection => {}
                    _ = token.cancelled() => {}
                }
            });
        }
    });
    Server { shutdown, accept }
}

/// The answer of a handler.
pub(super) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn json(status: u16, value: &Value) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(value.to_string())
    }

    fn message(status: u16, text: &str) -> Reply {
        Reply::json(status, &serde_json::json!({ "message": text }))
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }

    fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::builder().status(self.status);
        for (name, value) in self.headers {
            response = response.header(name, value);
        }
        response
            .body(Full::new(self.body))
            .expect("a valid response")
    }
}

/// `a=1&b=x+y` decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
