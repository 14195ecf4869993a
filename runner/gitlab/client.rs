//! The HTTP client of GitLab's runner API (runner-api.md §1).
//!
//! One [`ApiClient`] per `[[runners]]` URL, cloned freely: clones share the
//! connection pool. Every request carries the runner's `User-Agent`, a
//! fresh `X-Request-Id` and the token header of its kind; answers with a
//! "try later" status are retried by [`RetryPolicy`]. Redirects are never
//! followed automatically: the job token must not travel to another host,
//! and the calls that expect a redirect (artifacts) handle it themselves.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, USER_AGENT};
use reqwest::{Method, RequestBuilder, Url};

use super::error::ApiError;
use super::info::{go_arch, go_os};
use super::retry::{RetryPolicy, random_u64};

/// How long the client waits. A job poll may legitimately be held ~50 s by
/// GitLab's long polling, and artifacts can take long to send: only the
/// whole-request limit is long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// Establishing a connection (30 s).
    pub connect: Duration,
    /// Silence while reading an answer (10 min, gitlab-runner's response
    /// header timeout).
    pub read: Duration,
    /// One request from start to end (60 min).
    pub total: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(10 * 60),
            total: Duration::from_secs(60 * 60),
        }
    }
}

/// The biggest answer body read into memory (job payloads, error texts).
const MAX_BODY_BYTES: usize = 64 << 20;

/// A client of one GitLab instance's `/api/v4/`.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `<url>/api/v4/`.
    base: Url,
    user_agent: String,
    retry: RetryPolicy,
    timeouts: ClientTimeouts,
    observer: Option<ApiObserver>,
}

/// Told of every answer of the API (each attempt), or of a request that got
/// none: the agent counts them in its metrics.
pub type ApiObserver = Arc<dyn Fn(&ApiAnswer<'_>) + Send + Sync>;

/// One answer, as an [`ApiObserver`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiAnswer<'a> {
    /// gitlab-runner's name of the endpoint (`request_job`, `update_job`,
    /// `patch_trace`, ...).
    pub endpoint: &'a str,
    pub method: &'a str,
    /// `None`: no answer (connection refused, reset, timed out).
    pub status: Option<u16>,
}

/// gitlab-runner's endpoint name of a call.
fn endpoint_name(method: &Method, path: &str) -> &'static str {
    let parts: Vec<&str> = path.split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["jobs", "request"]) => "request_job",
        ("PUT", ["jobs", _]) => "update_job",
        ("PATCH", ["jobs", _, "trace"]) => "patch_trace",
        ("POST", ["jobs", _, "artifacts"]) => "upload_artifacts",
        ("GET", ["jobs", _, "artifacts"]) => "download_artifacts",
        ("POST", ["runners"]) => "register_runner",
        ("POST", ["runners", "verify"]) => "verify_runner",
        ("DELETE", ["runners"]) => "unregister_runner",
        ("DELETE", ["runners", "managers"]) => "unregister_runner_manager",
        ("POST", ["runners", "reset_authentication_token"]) => "reset_token",
        _ => "other",
    }
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Which token a request carries in its header.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    /// `RUNNER-TOKEN`: runner-level calls.
    Runner(&'a str),
    /// `JOB-TOKEN`: calls about one job.
    Job(&'a str),
}

/// The body of a request.
pub(crate) enum CallBody {
    Empty,
    Json(Vec<u8>),
    Text(Vec<u8>),
}

/// One API call, rebuilt for every attempt.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// Below `/api/v4/`, without a leading slash (`jobs/request`).
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub auth: Auth<'a>,
    pub body: CallBody,
    pub headers: Vec<(&'static str, String)>,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: impl Into<String>, auth: Auth<'a>) -> Self {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            auth,
            body: CallBody::Empty,
            headers: Vec::new(),
        }
    }

    /// A JSON body; serialising our own request types cannot fail.
    pub fn json(mut self, body: &impl serde::Serialize) -> Self {
        self.body = CallBody::Json(serde_json::to_vec(body).unwrap_or_default());
        self
    }

    /// The call's name in errors: `PATCH jobs/42/trace`. Paths hold ids,
    /// never tokens.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value as text, trimmed; `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

impl ApiClient {
    /// A client for the GitLab at `url` (the `[[runners]] url`, such as
    /// `https://gitlab.example.com`); calls go below `<url>/api/v4/`.
    pub fn new(url: &str) -> Result<ApiClient, ApiError> {
        Self::from_parts(
            api_base(url)?,
            RetryPolicy::default(),
            ClientTimeouts::default(),
        )
    }

    fn from_parts(
        base: Url,
        retry: RetryPolicy,
        timeouts: ClientTimeouts,
    ) -> Result<ApiClient, ApiError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .timeout(timeouts.total)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| ApiError::InvalidUrl {
                url: base.to_string(),
                reason: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                base,
                user_agent: user_agent(),
                retry,
                timeouts,
                observer: None,
            }),
        })
    }

    /// The same client (and connection pool), telling `observer` of every
    /// answer.
    pub fn with_observer(&self, observer: ApiObserver) -> ApiClient {
        ApiClient {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                user_agent: self.inner.user_agent.clone(),
                retry: self.inner.retry.clone(),
                timeouts: self.inner.timeouts.clone(),
                observer: Some(observer),
            }),
        }
    }

    /// Tells the observer, if any, of one answer.
    pub(crate) fn observe(&self, method: &Method, path: &str, status: Option<u16>) {
        if let Some(observer) = &self.inner.observer {
            observer(&ApiAnswer {
                endpoint: endpoint_name(method, path),
                method: method.as_str(),
                status,
            });
        }
    }

    /// The same client (and connection pool) retrying as `policy` says.
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> ApiClient {
        ApiClient {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                user_agent: self.inner.user_agent.clone(),
                retry: policy,
                timeouts: self.inner.timeouts.clone(),
                observer: self.inner.observer.clone(),
            }),
        }
    }

    /// A client with other timeouts (and its own connection pool).
    pub fn with_timeouts(&self, timeouts: ClientTimeouts) -> Result<ApiClient, ApiError> {
        let client = Self::from_parts(self.inner.base.clone(), self.inner.retry.clone(), timeouts)?;
        Ok(match &self.inner.observer {
            Some(observer) => client.with_observer(Arc::clone(observer)),
            None => client,
        })
    }

    /// A client like this one with a connection pool of its own, for use
    /// from another runtime: pooled connections belong to the runtime that
    /// opened them.
    pub(crate) fn detached(&self) -> Result<ApiClient, ApiError> {
        self.with_timeouts(self.inner.timeouts.clone())
    }

    /// `<url>/api/v4/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// `runner <version> (<os>/<arch>)`.
    pub fn user_agent(&self) -> &str {
        &self.inner.user_agent
    }

    /// The URL of `path` below `/api/v4/`.
    pub(crate) fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| ApiError::InvalidUrl {
                url: format!("{}{path}", self.inner.base),
                reason: e.to_string(),
            })
    }

    /// A request to `url` with the headers every request carries.
    pub(crate) fn request(&self, method: Method, url: Url, auth: Auth<'_>) -> RequestBuilder {
        let mut builder = self
            .inner
            .http
            .request(method, url)
            .header(USER_AGENT, &self.inner.user_agent)
            .header("X-Request-Id", request_id());
        match auth {
            Auth::None => {}
            Auth::Runner(token) => builder = builder.header("RUNNER-TOKEN", token),
            Auth::Job(token) => builder = builder.header("JOB-TOKEN", token),
        }
        builder
    }

    /// Sends `call`, retrying retryable statuses; the last answer is
    /// returned whatever its status. A transport error ends it at once.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<RawResponse, ApiError> {
        let name = call.name();
        let mut url = self.url(&call.path)?;
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &call.query {
                pairs.append_pair(key, value);
            }
        }
        let policy = &self.inner.retry;
        let mut attempt = 1;
        loop {
            let mut builder = self.request(call.method.clone(), url.clone(), call.auth);
            for (key, value) in &call.headers {
                builder = builder.header(*key, value);
            }
            builder = match &call.body {
                CallBody::Empty => builder.header(ACCEPT, "application/json"),
                CallBody::Json(body) => builder
                    .header(CONTENT_TYPE, "application/json")
                    .header(ACCEPT, "application/json")
                    .body(body.clone()),
                CallBody::Text(body) => builder
                    .header(CONTENT_TYPE, "text/plain")
                    .body(body.clone()),
            };
            let response = match builder.send().await {
                Ok(r) => r,
                Err(e) => {
                    self.observe(&call.method, &call.path, None);
                    return Err(ApiError::transport(&name, e));
                }
            };
            let status = response.status().as_u16();
            self.observe(&call.method, &call.path, Some(status));
            let headers = response.headers().clone();
            let body = read_body(&name, response).await?;
            if RetryPolicy::is_retryable(status) && attempt < policy.max_attempts {
                tokio::time::sleep(policy.wait(&headers, attempt, SystemTime::now())).await;
                attempt += 1;
                continue;
            }
            return Ok(RawResponse {
                status,
                headers,
                body,
            });
        }
    }
}

/// Reads a whole answer body, refusing one larger than any the API sends.
async fn read_body(call: &str, mut response: reqwest::Response) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ApiError::transport(call, e))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::bad_response(
                call,
                format!("answer larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `<url>/api/v4/` from a GitLab URL, with or without a trailing slash.
fn api_base(url: &str) -> Result<Url, ApiError> {
    let invalid = |reason: String| ApiError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https are supported".to_owned()));
    }
    if parsed.cannot_be_a_base() || parsed.host_str().is_none() {
        return Err(invalid("no host".to_owned()));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a GitLab URL has no query or fragment".to_owned()));
    }
    let path = parsed.path().trim_end_matches('/');
    let mut base = parsed.clone();
    base.set_path(&format!("{path}/api/v4/"));
    Ok(base)
}

/// gitlab-runner sends its version, branch, Go version and platform; this
/// runner has no branch or Go version to tell.
fn user_agent() -> String {
    format!(
        "runner {} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        go_os(),
        go_arch()
    )
}

/// A fresh correlation id: 32 hex digits, like a UUID without dashes.
fn request_id() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_base_is_below_the_gitlab_url() {
        let cases = [
            (
                "https://gitlab.example.com",
                "https://gitlab.example.com/api/v4/",
            ),
            (
                "https://gitlab.example.com/",
                "https://gitlab.example.com/api/v4/",
            ),
            ("http://h:8080/gitlab/", "http://h:8080/gitlab/api/v4/"),
        ];
        for (url, base) in cases {
            assert_eq!(api_base(url).unwrap().as_str(), base, "{url}");
        }
        let client = ApiClient::new("https://gitlab.example.com").unwrap();
        assert_eq!(
            client.url("jobs/request").unwrap().as_str(),
            "https://gitlab.example.com/api/v4/jobs/request"
        );
    }

    #[test]
    fn urls_that_are_not_http_are_refused() {
        for url in ["ftp://h", "gitlab.example.com", "https://h/?x=1", ""] {
            assert!(
                matches!(api_base(url), Err(ApiError::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn request_ids_are_fresh_hex() {
        let a = request_id();
        let b = request_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_user_agent_names_runner_and_platform() {
        let ua = user_agent();
        assert!(ua.starts_with(&format!("runner {} (", env!("CARGO_PKG_VERSION"))));
        assert!(ua.ends_with(&format!("{}/{})", go_os(), go_arch())), "{ua}");
    }
}
