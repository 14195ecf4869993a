//! The job calls (runner-api.md §3, §5): asking for a job, updating its
//! state, appending to its trace.
//!
//! Answers the caller acts on come back as typed outcomes, not errors: a
//! 403 to a poll makes the runner unhealthy, a 416 to a trace patch moves
//! the offset, a `Job-Status: canceling` header cancels the job. Only a
//! failure to get an answer at all is an [`ApiError`].

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{ApiClient, Auth, Call, CallBody, RawResponse, header_str};
use super::error::{ApiError, server_message};
use super::info::Info;
use crate::job::payload::JobPayload;

/// The longest update interval GitLab may ask for.
pub const MAX_UPDATE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// What `request_job` sends.
#[derive(Clone, Copy)]
pub struct JobRequest<'a> {
    /// The runner's authentication token.
    pub token: &'a str,
    /// This host's system id (`s_…`); empty leaves it out.
    pub system_id: &'a str,
    /// The last `X-GitLab-Last-Update` seen for this token, if any.
    pub last_update: Option<&'a str>,
    pub info: &'a Info,
}

#[derive(Serialize)]
struct JobRequestBody<'a> {
    info: &'a Info,
    token: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    system_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update: Option<&'a str>,
}

/// The answer to a poll, with the queue version to send back next time.
#[derive(Debug)]
pub struct JobRequestResponse {
    pub outcome: JobRequestOutcome,
    /// `X-GitLab-Last-Update`, from whatever the answer was.
    pub last_update: Option<String>,
}

/// What a poll brought.
#[derive(Debug)]
pub enum JobRequestOutcome {
    /// 201: a job to run.
    Job(Box<ReceivedJob>),
    /// 204: nothing to do now.
    NoJob,
    /// 403: the token is not (or no longer) valid.
    Forbidden { message: String },
    /// 409: another runner took the job being assigned; poll again.
    Conflict,
    /// 422: the runner has no owner any more.
    Orphaned { message: String },
    /// 429, still after the retries.
    RateLimited,
    /// 5xx, still after the retries (503: the instance is unavailable).
    ServerError { status: u16, message: String },
    /// Any other status.
    Unexpected { status: u16, message: String },
    /// A 201 whose body is not a job payload. The job was assigned, but
    /// cannot be run.
    BadPayload { reason: String },
}

impl JobRequestOutcome {
    /// Whether the answer counts as a healthy one for the runner's health
    /// check (runner-api.md §3.4): everything but a 403. A transport error
    /// (an `Err` from `request_job`) counts as unhealthy too.
    pub fn is_healthy(&self) -> bool {
        !matches!(self, JobRequestOutcome::Forbidden { .. })
    }
}

/// A job GitLab assigned to this runner.
pub struct ReceivedJob {
    pub payload: JobPayload,
    /// The body as it came, for fields the payload type does not keep.
    pub raw: serde_json::Value,
}

impl fmt::Debug for ReceivedJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedJob")
            .field("id", &self.payload.id)
            .field("name", &self.payload.job_info.name)
            .finish_non_exhaustive()
    }
}

/// Which job a call is about, and the token that proves it.
#[derive(Clone, PartialEq, Eq)]
pub struct JobCredentials {
    pub id: u64,
    pub token: String,
}

impl JobCredentials {
    pub fn of(payload: &JobPayload) -> JobCredentials {
        JobCredentials {
            id: payload.id,
            token: payload.token.clone(),
        }
    }
}

impl fmt::Debug for JobCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobCredentials")
            .field("id", &self.id)
            .field("token", &"[MASKED]")
            .finish()
    }
}

/// The job states a runner reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Still preparing, before the acknowledgement (two-phase commit).
    Pending,
    Running,
    Success,
    Failed,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Success | JobState::Failed)
    }
}

/// The trace as the runner has it: `crc32:%08x` of its bytes, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceOutput {
    pub checksum: String,
    pub bytesize: u64,
}

/// What `update_job` sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobUpdate {
    pub state: Option<JobState>,
    /// Already mapped to a reason the server knows (see
    /// `map_failure_reason`).
    pub failure_reason: Option<String>,
    /// Left out when 0, as GitLab reads a missing code as 0.
    pub exit_code: Option<i32>,
    pub output: Option<TraceOutput>,
}

impl JobUpdate {
    /// `state=running` without output: the acknowledgement right after a
    /// job is received.
    pub fn running() -> JobUpdate {
        JobUpdate {
            state: Some(JobState::Running),
            ..JobUpdate::default()
        }
    }
}

#[derive(Serialize)]
struct UpdateBody<'a> {
    info: &'a Info,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<JobState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    /// The deprecated place of the checksum, still read by older servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    output: OutputBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
}

#[derive(Serialize)]
struct OutputBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytesize: Option<u64>,
}

/// The answer to a job update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateResponse {
    pub status: u16,
    pub outcome: UpdateOutcome,
    /// `Job-Status`: `running`, `canceling`, `canceled`, ...
    pub job_status: Option<String>,
    /// `X-GitLab-Trace-Update-Interval`, when given and positive (capped).
    pub update_interval: Option<Duration>,
}

/// What a job update's answer means (in gitlab-runner's order of checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// 200: recorded.
    Succeeded,
    /// 202: the server is still storing the trace; send it again after the
    /// update interval.
    Accepted,
    /// 412: the server's trace does not match; send the whole trace again,
    /// then the update.
    TraceValidationFailed,
    /// 403, or `Job-Status` `canceled`/`failed`: the job is over on the
    /// server; stop everything.
    Abort,
    /// 404: the job is gone.
    NotFound,
    /// 409: another runner manager has the job (two-phase commit).
    Conflict,
    /// Anything else; worth retrying later.
    Failed { message: String },
}

impl UpdateResponse {
    /// `Job-Status: canceling`: GitLab asks the job to stop gracefully.
    pub fn is_canceling(&self) -> bool {
        self.job_status.as_deref() == Some("canceling")
    }
}

/// The answer to a trace patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchResponse {
    pub status: u16,
    pub outcome: PatchOutcome,
    pub job_status: Option<String>,
    pub update_interval: Option<Duration>,
}

impl PatchResponse {
    /// `Job-Status: canceling`.
    pub fn is_canceling(&self) -> bool {
        self.job_status.as_deref() == Some("canceling")
    }
}

/// What a trace patch's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    /// 202: appended; the next patch starts at `next_offset`.
    Accepted { next_offset: u64 },
    /// 416: the server has `server_size` bytes; continue from there.
    RangeMismatch { server_size: u64 },
    /// 404: the job is gone; stop sending.
    NotFound,
    /// 403, or `Job-Status` `canceled`/`failed`.
    Abort,
    /// Anything else; send again next time.
    Failed { message: String },
}

impl ApiClient {
    /// `POST /jobs/request`: asks GitLab for a job. May be held up to
    /// ~50 s by GitLab's long polling.
    pub async fn request_job(
        &self,
        request: JobRequest<'_>,
    ) -> Result<JobRequestResponse, ApiError> {
        let body = JobRequestBody {
            info: request.info,
            token: request.token,
            system_id: request.system_id,
            last_update: request.last_update,
        };
        let call = Call::new(Method::POST, "jobs/request", Auth::Runner(request.token)).json(&body);
        let response = self.send(&call).await?;
        let last_update = response
            .header("x-gitlab-last-update")
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let message = || server_message(&response.headers, &response.body);
        let outcome = match response.status {
            201 => decode_job(&response.body),
            204 => JobRequestOutcome::NoJob,
            403 => JobRequestOutcome::Forbidden { message: message() },
            409 => JobRequestOutcome::Conflict,
            422 => JobRequestOutcome::Orphaned { message: message() },
            429 => JobRequestOutcome::RateLimited,
            status @ 500..=599 => JobRequestOutcome::ServerError {
                status,
                message: message(),
            },
            status => JobRequestOutcome::Unexpected {
                status,
                message: message(),
            },
        };
        Ok(JobRequestResponse {
            outcome,
            last_update,
        })
    }

    /// `PUT /jobs/:id`: reports the job's state (and its trace's checksum
    /// and size).
    pub async fn update_job(
        &self,
        job: &JobCredentials,
        info: &Info,
        update: &JobUpdate,
    ) -> Result<UpdateResponse, ApiError> {
        let output = update.output.as_ref();
        let is_final = update.state.is_some_and(JobState::is_final);
        let body = UpdateBody {
            info,
            token: &job.token,
            state: update.state,
            failure_reason: update.failure_reason.as_deref().filter(|r| !r.is_empty()),
            checksum: output
                .filter(|_| is_final)
                .map(|o| o.checksum.as_str())
                .filter(|c| !c.is_empty()),
            output: OutputBody {
                checksum: output
                    .map(|o| o.checksum.as_str())
                    .filter(|c| !c.is_empty()),
                bytesize: output.map(|o| o.bytesize).filter(|&n| n > 0),
            },
            exit_code: update.exit_code.filter(|&c| c != 0),
        };
        let call = Call::new(
            Method::PUT,
            format!("jobs/{}", job.id),
            Auth::Job(&job.token),
        )
        .json(&body);
        let response = self.send(&call).await?;
        let job_status = job_status(&response);
        let outcome = if is_abort_status(job_status.as_deref()) || response.status == 403 {
            UpdateOutcome::Abort
        } else {
            match response.status {
                200 => UpdateOutcome::Succeeded,
                202 => UpdateOutcome::Accepted,
                412 => UpdateOutcome::TraceValidationFailed,
                404 => UpdateOutcome::NotFound,
                409 => UpdateOutcome::Conflict,
                status => UpdateOutcome::Failed {
                    message: failed_message(status, &response),
                },
            }
        };
        Ok(UpdateResponse {
            status: response.status,
            outcome,
            job_status,
            update_interval: update_interval(&response),
        })
    }

    /// `PATCH /jobs/:id/trace`: appends `content`, which starts at byte
    /// `offset` of the trace. Empty content is never sent.
    pub async fn patch_trace(
        &self,
        job: &JobCredentials,
        content: &[u8],
        offset: u64,
        debug_trace: bool,
    ) -> Result<PatchResponse, ApiError> {
        if content.is_empty() {
            return Ok(PatchResponse {
                status: 202,
                outcome: PatchOutcome::Accepted {
                    next_offset: offset,
                },
                job_status: None,
                update_interval: None,
            });
        }
        let end = offset + content.len() as u64;
        let mut call = Call::new(
            Method::PATCH,
            format!("jobs/{}/trace", job.id),
            Auth::Job(&job.token),
        );
        call.query.push(("debug_trace", debug_trace.to_string()));
        // Inclusive end, no unit: what GitLab parses.
        call.headers
            .push(("Content-Range", format!("{offset}-{}", end - 1)));
        call.body = CallBody::Text(content.to_vec());
        let response = self.send(&call).await?;
        let job_status = job_status(&response);
        let outcome = if is_abort_status(job_status.as_deref()) || response.status == 403 {
            PatchOutcome::Abort
        } else {
            match response.status {
                202 | 200 => PatchOutcome::Accepted { next_offset: end },
                416 => match response.header("range").and_then(range_end) {
                    Some(server_size) => PatchOutcome::RangeMismatch { server_size },
                    None => PatchOutcome::Failed {
                        message: "416 without a usable Range header".to_owned(),
                    },
                },
                404 => PatchOutcome::NotFound,
                status => PatchOutcome::Failed {
                    message: failed_message(status, &response),
                },
            }
        };
        Ok(PatchResponse {
            status: response.status,
            outcome,
            job_status,
            update_interval: update_interval(&response),
        })
    }
}

fn decode_job(body: &[u8]) -> JobRequestOutcome {
    let raw: serde_json::Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(e) => {
            return JobRequestOutcome::BadPayload {
                reason: format!("the job is not JSON: {e}"),
            };
        }
    };
    match JobPayload::deserialize(&raw) {
        Ok(payload) => JobRequestOutcome::Job(Box::new(ReceivedJob { payload, raw })),
        Err(e) => JobRequestOutcome::BadPayload {
            reason: format!("the job cannot be read: {e}"),
        },
    }
}

fn job_status(response: &RawResponse) -> Option<String> {
    response
        .header("job-status")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn is_abort_status(status: Option<&str>) -> bool {
    matches!(status, Some("canceled" | "failed"))
}

fn failed_message(status: u16, response: &RawResponse) -> String {
    let text = server_message(&response.headers, &response.body);
    if text.is_empty() {
        format!("status {status}")
    } else {
        format!("status {status}: {text}")
    }
}

/// `X-GitLab-Trace-Update-Interval` in whole seconds; absent, empty or 0
/// means "keep yours".
fn update_interval(response: &RawResponse) -> Option<Duration> {
    parse_interval(&response.headers)
}

pub(crate) fn parse_interval(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = header_str(headers, "x-gitlab-trace-update-interval")?
        .parse()
        .ok()?;
    (secs > 0).then(|| Duration::from_secs(secs).min(MAX_UPDATE_INTERVAL))
}

/// The number after `-` in a `Range: 0-<size>` header.
fn range_end(range: &str) -> Option<u64> {
    let range = range
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches('=')
        .trim();
    range.rsplit_once('-')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn the_range_end_is_read_in_every_spelling() {
        assert_eq!(range_end("0-1024"), Some(1024));
        assert_eq!(range_end(" 0-0 "), Some(0));
        assert_eq!(range_end("bytes=0-77"), Some(77));
        assert_eq!(range_end("1024"), None);
        assert_eq!(range_end("0-x"), None);
    }

    #[test]
    fn update_intervals_are_positive_seconds_capped_at_fifteen_minutes() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                "x-gitlab-trace-update-interval",
                HeaderValue::from_str(v).unwrap(),
            );
            parse_interval(&h)
        };
        assert_eq!(with("30"), Some(Duration::from_secs(30)));
        assert_eq!(with("0"), None);
        assert_eq!(with(""), None);
        assert_eq!(with("-3"), None);
        assert_eq!(with("99999"), Some(MAX_UPDATE_INTERVAL));
        assert_eq!(parse_interval(&HeaderMap::new()), None);
    }

    #[test]
    fn a_final_update_carries_the_checksum_twice_and_no_zero_exit_code() {
        let info = Info::new("shell", "bash");
        let output = TraceOutput {
            checksum: "crc32:0b7d44a1".into(),
            bytesize: 20411,
        };
        let body = serde_json::to_value(UpdateBody {
            info: &info,
            token: "t",
            state: Some(JobState::Failed),
            failure_reason: Some("script_failure"),
            checksum: Some(&output.checksum),
            output: OutputBody {
                checksum: Some(&output.checksum),
                bytesize: Some(output.bytesize),
            },
            exit_code: None,
        })
        .unwrap();
        assert_eq!(body["state"], "failed");
        assert_eq!(body["checksum"], "crc32:0b7d44a1");
        assert_eq!(body["output"]["bytesize"], 20411);
        assert!(body.get("exit_code").is_none());
    }

    #[test]
    fn a_bad_payload_is_an_outcome_not_a_panic() {
        assert!(matches!(
            decode_job(b"not json"),
            JobRequestOutcome::BadPayload { .. }
        ));
        assert!(matches!(
            decode_job(br#"{"id": "seven"}"#),
            JobRequestOutcome::BadPayload { .. }
        ));
        match decode_job(br#"{"id": 7, "token": "t", "extra": 1}"#) {
            JobRequestOutcome::Job(job) => {
                assert_eq!(job.payload.id, 7);
                assert_eq!(job.raw["extra"], 1);
            }
            other => panic!("{other:?}"),
        }
    }
}
