//! The engine's [`ArtifactTransport`] over GitLab's API.
//!
//! The engine calls its transport synchronously, from
//! `tokio::task::block_in_place` on a multi-thread runtime; the API client
//! is async. On such a runtime the call blocks this thread on the async
//! transfer (`Handle::block_on`). On a current-thread runtime, which would
//! stall if blocked, and outside any runtime, the transfer runs on a
//! thread of its own with its own runtime and connections.

use std::future::Future;
use std::path::Path;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::job::artifacts_stage::{ArtifactTransport, ArtifactUpload, TransportError};
use crate::job::payload::{Dependency, JobPayload};

use super::artifacts::ArtifactTiming;
use super::client::ApiClient;

/// Uploads this job's artifacts and downloads its dependencies' through
/// GitLab.
#[derive(Debug, Clone)]
pub struct ApiArtifactTransport {
    client: ApiClient,
    /// Whole downloads per dependency (`ARTIFACT_DOWNLOAD_ATTEMPTS`).
    download_attempts: u32,
    timing: ArtifactTiming,
}

/// `ARTIFACT_DOWNLOAD_ATTEMPTS` and the other stage attempt counts: 1 to
/// 10, 1 when unset or not a number.
fn stage_attempts(value: Option<&str>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(1, |n| n.clamp(1, 10) as u32)
}

impl ApiArtifactTransport {
    /// The transport of the job `payload`, talking through `client`.
    pub fn new(client: ApiClient, payload: &JobPayload) -> ApiArtifactTransport {
        ApiArtifactTransport {
            client,
            download_attempts: stage_attempts(payload.variable("ARTIFACT_DOWNLOAD_ATTEMPTS")),
            timing: ArtifactTiming::default(),
        }
    }

    /// The same transport waiting as `timing` says between tries.
    pub fn with_timing(mut self, timing: ArtifactTiming) -> ApiArtifactTransport {
        self.timing = timing;
        self
    }

    /// Runs the async `work` to its end from synchronous code.
    fn run<T, F, Fut>(&self, work: F) -> Result<T, TransportError>
    where
        T: Send,
        F: FnOnce(ApiClient) -> Fut + Send,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                let client = self.client.clone();
                tokio::task::block_in_place(|| handle.block_on(work(client)))
            }
            _ => self.run_on_own_runtime(work),
        }
    }

    fn run_on_own_runtime<T, F, Fut>(&self, work: F) -> Result<T, TransportError>
    where
        T: Send,
        F: FnOnce(ApiClient) -> Fut + Send,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let client = self
            .client
            .detached()
            .map_err(|e| TransportError::Refused(e.to_string()))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| {
                            TransportError::Refused(format!("cannot start a runtime: {e}"))
                        })?;
                    runtime.block_on(work(client))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(TransportError::Refused(
                        "the artifact transfer stopped unexpectedly".to_owned(),
                    ))
                })
        })
    }
}

impl ArtifactTransport for ApiArtifactTransport {
    fn upload(&self, upload: &ArtifactUpload<'_>) -> Result<String, TransportError> {
        let timing = &self.timing;
        self.run(|client| async move { client.upload_artifact(upload, timing).await })
    }

    fn download(&self, dependency: &Dependency, dest: &Path) -> Result<String, TransportError> {
        let timing = &self.timing;
        let attempts = self.download_attempts;
        self.run(|client| async move {
            let mut wait = timing.stage_retry_wait;
            let mut attempt = 1;
            loop {
                let result = client
                    .download_artifact(dependency.id, &dependency.token, dest, timing)
                    .await;
                if result.is_ok() || attempt >= attempts {
                    return result;
                }
                attempt += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(timing.stage_retry_wait_max);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_attempts_are_clamped_like_gitlab_runner_s() {
        assert_eq!(stage_attempts(None), 1);
        assert_eq!(stage_attempts(Some("3")), 3);
        assert_eq!(stage_attempts(Some(" 0 ")), 1);
        assert_eq!(stage_attempts(Some("-4")), 1);
        assert_eq!(stage_attempts(Some("99")), 10);
        assert_eq!(stage_attempts(Some("lots")), 1);
    }
}
