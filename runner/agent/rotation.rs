//! Automatic rotation of runner authentication tokens that expire.
//!
//! GitLab may give a runner token an expiry (`token_expires_at`). As
//! gitlab-runner does, the agent asks for a new token once three quarters
//! of the token's life have passed (`POST
//! /runners/reset_authentication_token`), writes it into `config.toml`
//! (keeping the file's comments) and reloads. `FF_DISABLE_AUTOMATIC_TOKEN_ROTATION`
//! in the entry's `feature_flags` turns this off.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::config::{RunnerConfig, Timestamp, TokenUpdate, update_runner_token};
use crate::gitlab::ApiClient;

/// The share of a token's life after which it is replaced.
const RESET_FACTOR: f64 = 0.75;

/// Whether `config`'s token is due for replacement at `now`.
pub fn rotation_due(config: &RunnerConfig, now: SystemTime) -> bool {
    if config
        .feature_flag("FF_DISABLE_AUTOMATIC_TOKEN_ROTATION")
        .unwrap_or(false)
    {
        return false;
    }
    let Some(expires) = config.token_expires_at() else {
        return false;
    };
    // A token with no recorded start is treated as obtained now-ish: the
    // expiry alone decides, with the same margin before it.
    let obtained = config.token_obtained_at().unwrap_or(now);
    let Ok(life) = expires.duration_since(obtained) else {
        // Expiry before its start: already due.
        return true;
    };
    let due = obtained + life.mul_f64(RESET_FACTOR);
    now >= due
}

/// Replaces the token of `config` in GitLab and in the file at `path`.
/// Returns the new token's short form, for the log.
pub async fn rotate(
    client: &ApiClient,
    config: &RunnerConfig,
    path: &Path,
) -> Result<String, String> {
    let reset = client
        .reset_token(&config.token)
        .await
        .map_err(|e| format!("resetting the token failed: {e}"))?;
    let update = TokenUpdate {
        token: reset.token.clone(),
        obtained_at: SystemTime::now(),
        expires_at: Timestamp::token_expiry(reset.token_expires_at.as_deref()),
    };
    update_runner_token(path, &config.token, &update)
        .map_err(|e| format!("writing the new token failed: {e}"))?;
    Ok(crate::gitlab::short_token(&reset.token))
}

/// How often a due rotation is retried after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;

    fn runner(keys: &str) -> RunnerConfig {
        let text =
            format!("concurrent = 1\n[[runners]]\nurl = \"https://x\"\ntoken = \"glrt-t\"\n{keys}");
        parse_config(Path::new("config.toml"), &text)
            .unwrap()
            .config
            .runners
            .remove(0)
    }

    fn at(text: &str) -> SystemTime {
        Timestamp::parse_rfc3339(text).unwrap().to_system_time()
    }

    #[test]
    fn a_token_is_due_after_three_quarters_of_its_life() {
        let r = runner(
            "token_obtained_at = 2026-01-01T00:00:00Z\ntoken_expires_at = 2026-01-05T00:00:00Z\n",
        );
        assert!(!rotation_due(&r, at("2026-01-03T23:59:59Z")));
        assert!(rotation_due(&r, at("2026-01-04T00:00:00Z")));
    }

    #[test]
    fn tokens_without_expiry_or_with_rotation_off_are_never_due() {
        assert!(!rotation_due(&runner(""), at("2030-01-01T00:00:00Z")));
        // Go's zero time is gitlab-runner's "no expiry".
        let zero = runner("token_expires_at = 0001-01-01T00:00:00Z\n");
        assert!(!rotation_due(&zero, at("2030-01-01T00:00:00Z")));
        let off = runner(
            "token_obtained_at = 2026-01-01T00:00:00Z\ntoken_expires_at = 2026-01-02T00:00:00Z\n[runners.feature_flags]\nFF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true\n",
        );
        assert!(!rotation_due(&off, at("2030-01-01T00:00:00Z")));
    }
}
