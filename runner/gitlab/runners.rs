//! The runner's own lifecycle on GitLab (runner-api.md §2): registration
//! with a registration token, verification of an authentication token,
//! unregistering, and token reset.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize, Serializer};

use super::client::{ApiClient, Auth, Call, RawResponse};
use super::error::ApiError;
use super::info::Info;

/// What `register` tells GitLab about the new runner. Empty values are
/// left out, as gitlab-runner leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegisterParams {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub maintenance_note: String,
    /// Sent as one comma-separated string.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "comma_separated"
    )]
    pub tag_list: Vec<String>,
    pub run_untagged: bool,
    pub locked: bool,
    /// `not_protected` or `ref_protected`; empty lets GitLab choose.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_level: String,
    /// Seconds; 0 means no maximum.
    #[serde(skip_serializing_if = "is_zero")]
    pub maximum_timeout: u64,
    pub paused: bool,
}

fn comma_separated<S: Serializer>(tags: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&tags.join(","))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct RegisterBody<'a> {
    #[serde(flatten)]
    params: &'a RegisterParams,
    info: &'a Info,
    token: &'a str,
}

/// A runner GitLab created or recognised, with its authentication token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredRunner {
    pub id: u64,
    pub token: String,
    /// RFC 3339, or `None` when the token does not expire.
    #[serde(default)]
    pub token_expires_at: Option<String>,
}

/// What `verify` learnt. Older GitLabs answer a bare `200`, so every part
/// may be missing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VerifiedRunner {
    pub id: Option<u64>,
    pub token: Option<String>,
    pub token_expires_at: Option<String>,
}

/// A new authentication token from `reset_token`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct ResetToken {
    pub token: String,
    #[serde(default)]
    pub token_expires_at: Option<String>,
}

// Tokens stay out of debug output, which ends up in logs.
impl fmt::Debug for RegisteredRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredRunner")
            .field("id", &self.id)
            .field("token", &"[MASKED]")
            .field("token_expires_at", &self.token_expires_at)
            .finish()
    }
}

impl fmt::Debug for VerifiedRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedRunner")
            .field("id", &self.id)
            .field("token", &self.token.as_ref().map(|_| "[MASKED]"))
            .field("token_expires_at", &self.token_expires_at)
            .finish()
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetToken")
            .field("token", &"[MASKED]")
            .field("token_expires_at", &self.token_expires_at)
            .finish()
    }
}

#[derive(Deserialize)]
struct VerifyBody {
    id: Option<u64>,
    token: Option<String>,
    token_expires_at: Option<String>,
}

impl ApiClient {
    /// `POST /runners`: creates a runner with a (deprecated) registration
    /// token. 403: wrong token; 410: registration tokens are turned off.
    pub async fn register(
        &self,
        registration_token: &str,
        params: &RegisterParams,
        info: &Info,
    ) -> Result<RegisteredRunner, ApiError> {
        let body = RegisterBody {
            params,
            info,
            token: registration_token,
        };
        let call = Call::new(Method::POST, "runners", Auth::Runner(registration_token)).json(&body);
        let response = self.send(&call).await?;
        match response.status {
            201 | 200 => decode(&call, &response),
            status => Err(error(&call, status, &response)),
        }
    }

    /// `POST /runners/verify`: checks an authentication token and records
    /// this host (`system_id`) as one of the runner's managers. Both the
    /// JSON answer of current GitLab and the bare `200` of older ones are
    /// accepted. 403: unknown token; 422: orphaned runner.
    pub async fn verify(
        &self,
        token: &str,
        system_id: &str,
        info: &Info,
    ) -> Result<VerifiedRunner, ApiError> {
        let body = serde_json::json!({ "info": info, "token": token, "system_id": system_id });
        let call = Call::new(Method::POST, "runners/verify", Auth::Runner(token)).json(&body);
        let response = self.send(&call).await?;
        if !(200..300).contains(&response.status) {
            return Err(error(&call, response.status, &response));
        }
        // Older servers answer the text `200`: any body that is not a JSON
        // object means "valid" without details.
        Ok(serde_json::from_slice::<VerifyBody>(&response.body)
            .map(|b| VerifiedRunner {
                id: b.id,
                token: b.token,
                token_expires_at: b.token_expires_at,
            })
            .unwrap_or_default())
    }

    /// `DELETE /runners`: removes the runner from GitLab.
    pub async fn unregister(&self, token: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "token": token });
        let call = Call::new(Method::DELETE, "runners", Auth::Runner(token)).json(&body);
        self.expect_success(&call).await
    }

    /// `DELETE /runners/managers`: removes only this host's manager of the
    /// runner (404: no such manager).
    pub async fn unregister_manager(&self, token: &str, system_id: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "token": token, "system_id": system_id });
        let call = Call::new(Method::DELETE, "runners/managers", Auth::Runner(token)).json(&body);
        self.expect_success(&call).await
    }

    /// `POST /runners/reset_authentication_token`: a new token for the
    /// runner; the current one stops working.
    pub async fn reset_token(&self, token: &str) -> Result<ResetToken, ApiError> {
        let body = serde_json::json!({ "token": token });
        let call = Call::new(
            Method::POST,
            "runners/reset_authentication_token",
            Auth::Runner(token),
        )
        .json(&body);
        let response = self.send(&call).await?;
        match response.status {
            201 | 200 => decode(&call, &response),
            status => Err(error(&call, status, &response)),
        }
    }

    async fn expect_success(&self, call: &Call<'_>) -> Result<(), ApiError> {
        let response = self.send(call).await?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(error(call, response.status, &response))
        }
    }
}

fn error(call: &Call<'_>, status: u16, response: &RawResponse) -> ApiError {
    ApiError::from_status(&call.name(), status, &response.headers, &response.body)
}

/// A JSON answer as `T`; the body is not quoted in the error, since these
/// answers hold tokens.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    call: &Call<'_>,
    response: &RawResponse,
) -> Result<T, ApiError> {
    serde_json::from_slice(&response.body).map_err(|e| {
        ApiError::bad_response(
            &call.name(),
            format!(
                "invalid JSON (content type {:?}): {}",
                response.header("content-type").unwrap_or(""),
                e
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_sends_tags_as_one_string_and_leaves_out_empty_values() {
        let params = RegisterParams {
            description: "rust-runner-01".into(),
            tag_list: vec!["linux".into(), "docker".into()],
            locked: true,
            ..RegisterParams::default()
        };
        let info = Info::new("", "");
        let body = serde_json::to_value(RegisterBody {
            params: &params,
            info: &info,
            token: "GR1348941x",
        })
        .unwrap();
        assert_eq!(body["tag_list"], "linux,docker");
        assert_eq!(body["locked"], true);
        assert_eq!(body["run_untagged"], false);
        assert_eq!(body["token"], "GR1348941x");
        assert!(body.get("maintenance_note").is_none());
        assert!(body.get("access_level").is_none());
        assert!(body.get("maximum_timeout").is_none());
        assert!(body["info"]["features"].is_object());
    }

    #[test]
    fn debug_output_hides_tokens() {
        let runner = RegisteredRunner {
            id: 1,
            token: "glrt-secret".into(),
            token_expires_at: None,
        };
        assert!(!format!("{runner:?}").contains("secret"));
        let reset = ResetToken {
            token: "glrt-secret".into(),
            token_expires_at: None,
        };
        assert!(!format!("{reset:?}").contains("secret"));
    }
}
