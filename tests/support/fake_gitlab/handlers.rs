//! The fake GitLab's answers, endpoint by endpoint, as runner-api.md
//! §2–§7 describe GitLab's.

use std::fmt;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{Value, json};

use super::{
    Endpoint, Fault, JobRecord, RecordedRequest, Reply, RunnerRecord, Shared, State,
    StoredArtifact, multipart, query_pairs,
};

/// Returned to hyper to close the connection without an answer.
#[derive(Debug)]
pub(super) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) async fn handle(
    state: Shared,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let path = parts.uri.path().to_owned();
    let route = route(parts.method.as_str(), &path);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        endpoint: route.map(|(e, _)| e),
        at: std::time::Instant::now(),
    };
    let fault = {
        let mut st = lock(&state);
        st.requests.push(recorded.clone());
        route.and_then(|(endpoint, _)| st.faults.get_mut(&endpoint)?.pop_front())
    };
    let reply = match (fault, route) {
        (Some(Fault::Drop), _) => return Err(DropConnection),
        (
            Some(Fault::Status {
                status,
                headers,
                body,
            }),
            _,
        ) => {
            let mut reply = Reply::new(status).body(body);
            reply.headers = headers;
            reply
        }
        (None, None) => Reply::message(404, "404 Not Found"),
        (None, Some((Endpoint::RequestJob, _))) => request_job(&state, &recorded).await,
        (None, Some((endpoint, id))) => {
            let mut st = lock(&state);
            dispatch(&mut st, endpoint, id, &recorded)
        }
    };
    Ok(reply.into_response())
}

/// The endpoint of a request, and the job id in its path.
fn route(method: &str, path: &str) -> Option<(Endpoint, u64)> {
    if let Some(rest) = path.strip_prefix("/object-storage/") {
        let id = rest.split('/').next()?.parse().ok()?;
        return (method == "GET").then_some((Endpoint::ObjectStorage, id));
    }
    let rest = path.strip_prefix("/api/v4/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let endpoint = match (method, segments.as_slice()) {
        ("POST", ["runners"]) => Endpoint::Register,
        ("POST", ["runners", "verify"]) => Endpoint::Verify,
        ("DELETE", ["runners"]) => Endpoint::Unregister,
        ("DELETE", ["runners", "managers"]) => Endpoint::UnregisterManager,
        ("POST", ["runners", "reset_authentication_token"]) => Endpoint::ResetToken,
        ("POST", ["jobs", "request"]) => Endpoint::RequestJob,
        ("PUT", ["jobs", id]) => return Some((Endpoint::UpdateJob, id.parse().ok()?)),
        ("PATCH", ["jobs", id, "trace"]) => {
            return Some((Endpoint::PatchTrace, id.parse().ok()?));
        }
        ("POST", ["jobs", id, "artifacts"]) => {
            return Some((Endpoint::UploadArtifacts, id.parse().ok()?));
        }
        ("GET", ["jobs", id, "artifacts"]) => {
            return Some((Endpoint::DownloadArtifacts, id.parse().ok()?));
        }
        _ => return None,
    };
    Some((endpoint, 0))
}

fn dispatch(st: &mut State, endpoint: Endpoint, id: u64, req: &RecordedRequest) -> Reply {
    match endpoint {
        Endpoint::Register => register(st, req),
        Endpoint::Verify => verify(st, req),
        Endpoint::Unregister => unregister(st, req),
        Endpoint::UnregisterManager => unregister_manager(st, req),
        Endpoint::ResetToken => reset_token(st, req),
        Endpoint::UpdateJob => update_job(st, id, req),
        Endpoint::PatchTrace => patch_trace(st, id, req),
        Endpoint::UploadArtifacts => upload(st, id, req),
        Endpoint::DownloadArtifacts => download(st, id, req),
        Endpoint::ObjectStorage => object_storage(st, id),
        // Handled before, because it may wait.
        Endpoint::RequestJob => Reply::new(500),
    }
}

/// A new runner with a fresh `glrt-` token.
pub(super) fn new_runner(st: &mut State, registration: Option<Value>) -> RunnerRecord {
    let id = st.next_runner_id;
    st.next_runner_id += 1;
    let runner = RunnerRecord {
        id,
        token: format!("glrt-t1_fakeRunnerToken{id:04}xyz"),
        registration,
        managers: Vec::new(),
        orphaned: false,
    };
    st.runners.push(runner.clone());
    runner
}

/// The token a runner call carries: in the body, else in `RUNNER-TOKEN`.
fn runner_token(req: &RecordedRequest) -> String {
    req.json()
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| req.header("runner-token").map(str::to_owned))
        .unwrap_or_default()
}

fn find_runner<'a>(st: &'a mut State, req: &RecordedRequest) -> Option<&'a mut RunnerRecord> {
    let token = runner_token(req);
    st.runners.iter_mut().find(|r| r.token == token)
}

fn add_manager(runner: &mut RunnerRecord, req: &RecordedRequest) {
    if let Some(system_id) = req.json().get("system_id").and_then(Value::as_str) {
        if !runner.managers.iter().any(|m| m == system_id) {
            runner.managers.push(system_id.to_owned());
        }
    }
}

fn register(st: &mut State, req: &RecordedRequest) -> Reply {
    if runner_token(req) != super::REGISTRATION_TOKEN {
        return Reply::message(403, "403 Forbidden");
    }
    if st.registration_disabled {
        return Reply::message(410, "runner registration disallowed");
    }
    let runner = new_runner(st, Some(req.json()));
    Reply::json(
        201,
        &json!({ "id": runner.id, "token": runner.token, "token_expires_at": null }),
    )
}

fn verify(st: &mut State, req: &RecordedRequest) -> Reply {
    let plain = st.verify_plain_text;
    let Some(runner) = find_runner(st, req) else {
        return Reply::message(403, "403 Forbidden");
    };
    if runner.orphaned {
        return Reply::message(422, "Runner is orphaned");
    }
    add_manager(runner, req);
    if plain {
        return Reply::new(200).body("200");
    }
    Reply::json(
        200,
        &json!({ "id": runner.id, "token": runner.token, "token_expires_at": "2099-12-31T00:00:00.000Z" }),
    )
}

fn unregister(st: &mut State, req: &RecordedRequest) -> Reply {
    let token = runner_token(req);
    let before = st.runners.len();
    st.runners.retain(|r| r.token != token);
    if st.runners.len() == before {
        Reply::message(403, "403 Forbidden")
    } else {
        Reply::new(204)
    }
}

fn unregister_manager(st: &mut State, req: &RecordedRequest) -> Reply {
    let Some(system_id) = req
        .json()
        .get("system_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Reply::message(400, "system_id is missing");
    };
    let Some(runner) = find_runner(st, req) else {
        return Reply::message(403, "403 Forbidden");
    };
    let before = runner.managers.len();
    runner.managers.retain(|m| *m != system_id);
    if runner.managers.len() == before {
        Reply::message(404, "404 Runner manager not found")
    } else {
        Reply::new(204)
    }
}

fn reset_token(st: &mut State, req: &RecordedRequest) -> Reply {
    let Some(runner) = find_runner(st, req) else {
        return Reply::message(403, "403 Forbidden");
    };
    runner.token = format!("glrt-t1_fakeResetToken{:04}abc", runner.id);
    Reply::json(
        201,
        &json!({ "token": runner.token, "token_expires_at": "2099-12-31T00:00:00.000Z" }),
    )
}

/// `POST /jobs/request`: a queued job (201), or 204 after the long-poll
/// wait; `X-GitLab-Last-Update` on every answer.
async fn request_job(state: &Shared, req: &RecordedRequest) -> Reply {
    let wait = {
        let mut st = lock(state);
        let Some(runner) = find_runner(&mut st, req) else {
            return Reply::message(403, "403 Forbidden");
        };
        if runner.orphaned {
            return Reply::message(422, "Runner is orphaned");
        }
        add_manager(runner, req);
        if let Some(reply) = take_job(&mut st) {
            return reply;
        }
        st.long_poll
    };
    if wait.is_zero() {
        return no_job(&lock(state));
    }
    tokio::time::sleep(wait).await;
    let mut st = lock(state);
    take_job(&mut st).unwrap_or_else(|| no_job(&st))
}

fn take_job(st: &mut State) -> Option<Reply> {
    let id = st.queue.pop_front()?;
    let last_update = st.last_update();
    let job = st.jobs.get_mut(&id)?;
    job.status = "running".into();
    Some(Reply::json(201, &job.payload).header("X-GitLab-Last-Update", last_update))
}

fn no_job(st: &State) -> Reply {
    Reply::new(204)
        .header("X-GitLab-Last-Update", st.last_update())
        .header("Gitlab-Ci-Builds-Polling", "yes")
}

/// Whether the job is over on the server: no more updates or trace.
fn is_finished(job: &JobRecord) -> bool {
    matches!(job.status.as_str(), "canceled" | "failed" | "success")
}

fn with_interval(reply: Reply, secs: Option<u64>) -> Reply {
    match secs {
        Some(secs) => reply.header("X-GitLab-Trace-Update-Interval", secs.to_string()),
        None => reply,
    }
}

fn update_job(st: &mut State, id: u64, req: &RecordedRequest) -> Reply {
    let trace_interval = st.trace_update_interval;
    let final_interval = st.final_update_interval;
    let Some(job) = st.jobs.get_mut(&id) else {
        return Reply::message(404, "404 Not Found");
    };
    let body = req.json();
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .or_else(|| req.header("job-token"))
        .unwrap_or_default();
    if token != job.token {
        return Reply::message(403, "403 Forbidden");
    }
    if is_finished(job) {
        return Reply::message(403, "403 Forbidden - Job is not running")
            .header("Job-Status", job.status.clone());
    }
    job.updates.push(body.clone());
    let reply = match body.get("state").and_then(Value::as_str) {
        None | Some("running") => {
            if job.status == "pending" {
                job.status = "running".into();
            }
            with_interval(Reply::new(200).body("200"), trace_interval)
        }
        Some("pending") if job.status == "pending" => Reply::new(200).body("200"),
        Some(state @ ("success" | "failed")) => {
            if job.accept_final > 0 {
                job.accept_final -= 1;
                with_interval(Reply::new(202).body("202"), final_interval)
            } else {
                let stored = format!("crc32:{:08x}", crc32fast::hash(&job.trace));
                let sent = body.pointer("/output/checksum").and_then(Value::as_str);
                job.checksum_matched = Some(sent == Some(stored.as_str()));
                job.final_update = Some(body.clone());
                job.status = if job.status == "canceling" {
                    "canceled".into()
                } else {
                    state.into()
                };
                Reply::new(200).body("200")
            }
        }
        _ => return Reply::message(400, "state is invalid"),
    };
    reply.header("Job-Status", job.status.clone())
}

fn patch_trace(st: &mut State, id: u64, req: &RecordedRequest) -> Reply {
    let interval = st.trace_update_interval;
    let Some(job) = st.jobs.get_mut(&id) else {
        return Reply::message(404, "404 Not Found");
    };
    if req.header("job-token") != Some(job.token.as_str()) {
        return Reply::message(403, "403 Forbidden");
    }
    if is_finished(job) {
        return Reply::message(403, "403 Forbidden - Job is not running")
            .header("Job-Status", job.status.clone());
    }
    let Some(range) = req.header("content-range") else {
        return Reply::message(400, "Content-Range is missing");
    };
    let Some(start) = range
        .split_once('-')
        .and_then(|(start, _)| start.trim().parse::<usize>().ok())
    else {
        return Reply::message(400, "Content-Range is invalid");
    };
    if start != job.trace.len() {
        return Reply::new(416)
            .header("Range", format!("0-{}", job.trace.len()))
            .header("Job-Status", job.status.clone());
    }
    job.trace.extend_from_slice(&req.body);
    if let Some((bytes, status)) = job.status_after_bytes.clone() {
        if job.trace.len() >= bytes {
            job.status = status;
            job.status_after_bytes = None;
        }
    }
    with_interval(
        Reply::new(202)
            .header("Range", format!("0-{}", job.trace.len()))
            .header("Job-Status", job.status.clone()),
        interval,
    )
}

fn upload(st: &mut State, id: u64, req: &RecordedRequest) -> Reply {
    let max = st.max_artifact_size;
    let Some(job) = st.jobs.get_mut(&id) else {
        return Reply::message(404, "404 Not Found");
    };
    if req.header("job-token") != Some(job.token.as_str()) {
        return Reply::message(403, "403 Forbidden");
    }
    if is_finished(job) {
        return Reply::message(403, "403 Forbidden - Job is not running");
    }
    if max.is_some_and(|max| req.body.len() > max) {
        return Reply::message(413, "413 Request Entity Too Large");
    }
    let Some(parts) = multipart::parse(req.header("content-type").unwrap_or_default(), &req.body)
    else {
        return Reply::message(400, "the body is not multipart/form-data");
    };
    // Parameters come in the query (current runners) or as form fields
    // (older ones).
    let mut params = query_pairs(&req.query);
    for part in parts.iter().filter(|p| p.file_name.is_none()) {
        params.push((
            part.name.clone(),
            String::from_utf8_lossy(&part.content).into_owned(),
        ));
    }
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "file" && p.file_name.is_some())
    else {
        return Reply::message(400, "file is missing");
    };
    job.artifacts.push(StoredArtifact {
        file_name: file.file_name.clone().unwrap_or_default(),
        artifact_type: param("artifact_type").unwrap_or_else(|| "archive".into()),
        artifact_format: param("artifact_format").unwrap_or_else(|| "zip".into()),
        expire_in: param("expire_in"),
        content: file.content.clone(),
    });
    Reply::new(201).body("201")
}

fn archive_of(job: &JobRecord) -> Option<&StoredArtifact> {
    job.artifacts
        .iter()
        .rev()
        .find(|a| a.artifact_type == "archive")
}

fn download(st: &mut State, id: u64, req: &RecordedRequest) -> Reply {
    let token = req.header("job-token").unwrap_or_default();
    // The dependency's own token, or (current GitLab) the token of a job
    // that is running.
    let allowed = !token.is_empty()
        && st.jobs.values().any(|j| {
            j.token == token && (j.id == id || matches!(j.status.as_str(), "running" | "canceling"))
        });
    let Some(job) = st.jobs.get(&id) else {
        return Reply::message(404, "404 Not Found");
    };
    if !allowed {
        return Reply::message(403, "403 Forbidden");
    }
    let Some(archive) = archive_of(job) else {
        return Reply::message(404, "404 Not Found");
    };
    let direct = query_pairs(&req.query)
        .iter()
        .any(|(k, v)| k == "direct_download" && v == "true");
    if st.object_storage && direct {
        let host = req.header("host").unwrap_or("127.0.0.1");
        return Reply::new(302).header(
            "Location",
            format!(
                "http://{host}/object-storage/{id}/artifacts.zip?X-Amz-Signature=fakesignature"
            ),
        );
    }
    Reply::new(200)
        .header("Content-Type", "application/octet-stream")
        .body(archive.content.clone())
}

fn object_storage(st: &mut State, id: u64) -> Reply {
    match st.jobs.get(&id).and_then(archive_of) {
        Some(archive) => Reply::new(200)
            .header("Content-Type", "application/octet-stream")
            .body(archive.content.clone()),
        None => Reply::new(404)
            .header("Content-Type", "application/xml")
            .body("<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"),
    }
}
