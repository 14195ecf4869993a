//! Artifact uploads and dependency downloads over the API (runner-api.md
//! §7.1, §7.2), with gitlab-runner's retry rules and log lines.
//!
//! Archives are streamed from and to files. A download redirected to
//! object storage is followed by hand, without the job token: the token
//! is for GitLab only.

use std::path::Path;
use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncWriteExt;

use crate::job::artifacts_stage::{ArtifactUpload, TransportError};

use super::client::{ApiClient, Auth};
use super::error::{ApiError, server_message};
use super::tokens::short_token;

/// The waits between artifact transfer attempts. The defaults are
/// gitlab-runner's; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactTiming {
    /// The first wait between upload tries (1 s), doubled each time ...
    pub upload_backoff_min: Duration,
    /// ... up to this (5 s).
    pub upload_backoff_max: Duration,
    /// Between the tries of one download (1 s).
    pub download_retry_wait: Duration,
    /// The first wait between whole downloads (`ARTIFACT_DOWNLOAD_ATTEMPTS`;
    /// 5 s), doubled each time ...
    pub stage_retry_wait: Duration,
    /// ... up to this (5 min).
    pub stage_retry_wait_max: Duration,
}

impl Default for ArtifactTiming {
    fn default() -> Self {
        ArtifactTiming {
            upload_backoff_min: Duration::from_secs(1),
            upload_backoff_max: Duration::from_secs(5),
            download_retry_wait: Duration::from_secs(1),
            stage_retry_wait: Duration::from_secs(5),
            stage_retry_wait_max: Duration::from_secs(5 * 60),
        }
    }
}

/// Upload tries for a 503 (GitLab busy), and for everything else retried.
const UPLOAD_TRIES_UNAVAILABLE: u32 = 6;
const UPLOAD_TRIES: u32 = 3;
/// One download try and two retries.
const DOWNLOAD_TRIES: u32 = 3;
/// Redirects followed within one download try.
const MAX_REDIRECTS: u32 = 5;

/// `201 Created`.
fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

impl ApiClient {
    /// `POST /jobs/:id/artifacts`: sends one packed artifact entry as the
    /// multipart part `file`, its type, format and expiry in the query.
    /// Returns the line to log.
    pub async fn upload_artifact(
        &self,
        upload: &ArtifactUpload<'_>,
        timing: &ArtifactTiming,
    ) -> Result<String, TransportError> {
        let mut url = self
            .url(&format!("jobs/{}/artifacts", upload.job_id))
            .map_err(refused)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("artifact_format", format_name(upload));
            query.append_pair("artifact_type", upload.artifact_type);
            if let Some(expire_in) = upload.expire_in.filter(|e| !e.is_empty()) {
                query.append_pair("expire_in", expire_in);
            }
        }
        let what = format!(
            "Uploading artifacts as {:?} to coordinator...",
            upload.artifact_type
        );
        let ids = format!(
            "id={} token={}",
            upload.job_id,
            short_token(upload.job_token)
        );
        let mut backoff = timing.upload_backoff_min;
        let mut tries = 0;
        loop {
            tries += 1;
            let (error, limit) = match self.send_upload(&url, upload).await {
                Ok((status @ (200 | 201), _)) => {
                    let status = status_text(status);
                    return Ok(format!(
                        "{what} {status}  id={} responseStatus={status} token={}",
                        upload.job_id,
                        short_token(upload.job_token)
                    ));
                }
                Ok((413, message)) => {
                    return Err(TransportError::Refused(format!(
                        "{what} too large: GitLab refuses an archive this big ({}){}  {ids}",
                        status_text(413),
                        with_colon(&message)
                    )));
                }
                Ok((403, message)) => {
                    return Err(TransportError::Refused(format!(
                        "{what} forbidden ({}){}  {ids}",
                        status_text(403),
                        with_colon(&message)
                    )));
                }
                Ok((status @ (301 | 302 | 303 | 307 | 308), location)) => {
                    // GitLab behind a redirect: the same path on the host
                    // it names.
                    let error = format!("{what} {} redirected  {ids}", status_text(status));
                    match rebase(&url, &location) {
                        Some(moved) => url = moved,
                        None => {
                            return Err(TransportError::Refused(format!(
                                "{error}: no usable Location"
                            )));
                        }
                    }
                    (error, UPLOAD_TRIES)
                }
                Ok((status, message)) => {
                    let limit = if status == 503 {
                        UPLOAD_TRIES_UNAVAILABLE
                    } else {
                        UPLOAD_TRIES
                    };
                    (
                        format!(
                            "{what} {}{}  {ids}",
                            status_text(status),
                            with_colon(&message)
                        ),
                        limit,
                    )
                }
                Err(e) => (format!("{what} {e}  {ids}"), UPLOAD_TRIES),
            };
            if tries >= limit {
                return Err(TransportError::Refused(error));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(timing.upload_backoff_max);
        }
    }

    /// One upload try: the status and the server's message (or the
    /// `Location` of a redirect).
    async fn send_upload(
        &self,
        url: &Url,
        upload: &ArtifactUpload<'_>,
    ) -> Result<(u16, String), ApiError> {
        let call = format!("POST jobs/{}/artifacts", upload.job_id);
        let file = tokio::fs::File::open(upload.archive)
            .await
            .map_err(|e| ApiError::bad_response(&call, format!("cannot open the archive: {e}")))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| ApiError::bad_response(&call, format!("cannot read the archive: {e}")))?
            .len();
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(file), len)
            .file_name(upload.file_name.to_owned())
            .mime_str("application/octet-stream")
            .map_err(|e| ApiError::transport(&call, e))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let path = format!("jobs/{}/artifacts", upload.job_id);
        let response = self
            .request(Method::POST, url.clone(), Auth::Job(upload.job_token))
            .multipart(form)
            .send()
            .await
            .map_err(|e| {
                self.observe(&Method::POST, &path, None);
                ApiError::transport(&call, e)
            })?;
        let status = response.status().as_u16();
        self.observe(&Method::POST, &path, Some(status));
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            return Ok((status, location));
        }
        let headers = response.headers().clone();
        // Error texts are short; a body that cannot be read is no message.
        let body = response.bytes().await.unwrap_or_default();
        Ok((status, server_message(&headers, &body)))
    }

    /// `GET /jobs/:id/artifacts` with the dependency's `token`, into
    /// `dest`: the first try asks for a direct download (a redirect to
    /// object storage), which is followed without the token. 401, 403 and
    /// 404 are final; anything else is tried again, twice. Returns the line
    /// to log.
    pub async fn download_artifact(
        &self,
        job_id: u64,
        token: &str,
        dest: &Path,
        timing: &ArtifactTiming,
    ) -> Result<String, TransportError> {
        let mut last = String::new();
        for attempt in 1..=DOWNLOAD_TRIES {
            match self.download_try(job_id, token, dest, attempt == 1).await {
                Ok(DownloadTry::Done { host, status }) => {
                    return Ok(format!(
                        "Downloading artifacts from coordinator... ok  host={host} id={job_id} responseStatus={} token={}",
                        status_text(status),
                        short_token(token)
                    ));
                }
                Ok(DownloadTry::Final(error)) => return Err(error),
                Ok(DownloadTry::Retry(reason)) => last = reason,
                Err(e) => return Err(e),
            }
            if attempt < DOWNLOAD_TRIES {
                tokio::time::sleep(timing.download_retry_wait).await;
            }
        }
        Err(TransportError::Refused(format!(
            "Downloading artifacts from coordinator... {last}  id={job_id} token={}",
            short_token(token)
        )))
    }

    async fn download_try(
        &self,
        job_id: u64,
        token: &str,
        dest: &Path,
        direct: bool,
    ) -> Result<DownloadTry, TransportError> {
        let call = format!("GET jobs/{job_id}/artifacts");
        let mut url = self
            .url(&format!("jobs/{job_id}/artifacts"))
            .map_err(refused)?;
        if direct {
            url.query_pairs_mut().append_pair("direct_download", "true");
        }
        let mut auth = Auth::Job(token);
        let mut redirects = 0;
        let response = loop {
            let response = match self.request(Method::GET, url.clone(), auth).send().await {
                Ok(response) => response,
                Err(e) => {
                    return Ok(DownloadTry::Retry(
                        ApiError::transport(&call, e).to_string(),
                    ));
                }
            };
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                break response;
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok());
            match location {
                Some(next) if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    url = next;
                    // Object storage takes signed URLs, not GitLab tokens.
                    auth = Auth::None;
                }
                _ => {
                    return Ok(DownloadTry::Retry(format!(
                        "{} without a usable Location",
                        status_text(status)
                    )));
                }
            }
        };
        let status = response.status().as_u16();
        let host = url.host_str().unwrap_or_default().to_owned();
        if status != 200 {
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            let message = server_message(&headers, &body);
            let text = format!("{}{}", status_text(status), with_colon(&message));
            return Ok(match status {
                404 => DownloadTry::Final(TransportError::NotFound { job_id }),
                401 | 403 => DownloadTry::Final(TransportError::Refused(format!(
                    "Downloading artifacts from coordinator... {text}  id={job_id} token={}",
                    short_token(token)
                ))),
                _ => DownloadTry::Retry(text),
            });
        }
        match save(response, dest).await {
            Ok(()) => Ok(DownloadTry::Done { host, status }),
            Err(SaveError::Io(action, source)) => Err(TransportError::Io {
                action,
                path: dest.to_owned(),
                source,
            }),
            Err(SaveError::Transport(e)) => Ok(DownloadTry::Retry(
                ApiError::transport(&call, e).to_string(),
            )),
        }
    }
}

enum DownloadTry {
    Done {
        host: String,
        status: u16,
    },
    /// Worth another try.
    Retry(String),
    /// Trying again would not help.
    Final(TransportError),
}

enum SaveError {
    Io(&'static str, std::io::Error),
    Transport(reqwest::Error),
}

/// Streams the body into `dest`, replacing what an earlier try left.
async fn save(mut response: reqwest::Response, dest: &Path) -> Result<(), SaveError> {
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| SaveError::Io("create", e))?;
    while let Some(chunk) = response.chunk().await.map_err(SaveError::Transport)? {
        file.write_all(&chunk)
            .await
            .map_err(|e| SaveError::Io("write", e))?;
    }
    file.flush().await.map_err(|e| SaveError::Io("write", e))
}

/// `url` with the scheme, host and port of `location` (which may be
/// relative to `url`).
fn rebase(url: &Url, location: &str) -> Option<Url> {
    let target = url.join(location).ok()?;
    let mut moved = url.clone();
    moved.set_scheme(target.scheme()).ok()?;
    moved.set_host(target.host_str()).ok()?;
    moved.set_port(target.port()).ok()?;
    Some(moved)
}

fn format_name(upload: &ArtifactUpload<'_>) -> &'static str {
    use crate::job::artifacts_stage::ArtifactFormat;
    match upload.format {
        ArtifactFormat::Zip => "zip",
        ArtifactFormat::Gzip => "gzip",
        ArtifactFormat::Raw => "raw",
    }
}

fn with_colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn refused(e: ApiError) -> TransportError {
    TransportError::Refused(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_moves_only_scheme_host_and_port() {
        let url = Url::parse("http://gitlab.local/api/v4/jobs/1/artifacts?artifact_type=archive")
            .unwrap();
        let moved = rebase(&url, "https://gitlab.example.com:8443/elsewhere").unwrap();
        assert_eq!(
            moved.as_str(),
            "https://gitlab.example.com:8443/api/v4/jobs/1/artifacts?artifact_type=archive"
        );
        assert_eq!(rebase(&url, "/relative").unwrap(), url);
    }

    #[test]
    fn statuses_read_like_go_s() {
        assert_eq!(status_text(201), "201 Created");
        assert_eq!(status_text(413), "413 Payload Too Large");
        assert_eq!(status_text(599), "599");
    }
}
