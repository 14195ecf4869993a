//! The errors of GitLab's runner API, typed by what a caller does next.
//!
//! Every message names the call (`POST jobs/request`) and never a token:
//! messages GitLab sends back are cut to one line and scrubbed of anything
//! shaped like a token before they are kept, and transport errors are kept
//! without their URL (object storage URLs carry signatures).

use reqwest::header::HeaderMap;

use crate::trace::TokenMasker;

/// Why a call to GitLab failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 403: the token is wrong, removed, or not allowed to do this.
    #[error("{call}: forbidden (403){}", detail(.message))]
    Forbidden { call: String, message: String },
    /// 410: the server refuses this for good (registration tokens turned
    /// off, for instance).
    #[error("{call}: gone (410){}", detail(.message))]
    Gone { call: String, message: String },
    /// 422: the runner exists but has no owner any more.
    #[error("{call}: runner is orphaned (422){}", detail(.message))]
    Orphaned { call: String, message: String },
    /// 413: the request body is larger than the server takes.
    #[error("{call}: too large (413){}", detail(.message))]
    TooLarge { call: String, message: String },
    /// 404: no such job, runner or runner manager.
    #[error("{call}: not found (404){}", detail(.message))]
    NotFound { call: String, message: String },
    /// Any other status the call does not expect.
    #[error("{call}: unexpected status {status}{}", detail(.message))]
    Status {
        call: String,
        status: u16,
        message: String,
    },
    /// The request did not get an answer: refused connection, timeout,
    /// reset, TLS failure.
    #[error("{call}: {message}")]
    Transport {
        call: String,
        message: String,
        timeout: bool,
    },
    /// An answer that cannot be read (bad JSON, missing header, too big).
    #[error("{call}: bad response: {reason}")]
    BadResponse { call: String, reason: String },
    /// The configured GitLab URL cannot be used.
    #[error("invalid GitLab URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl ApiError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Forbidden { .. } => Some(403),
            ApiError::Gone { .. } => Some(410),
            ApiError::Orphaned { .. } => Some(422),
            ApiError::TooLarge { .. } => Some(413),
            ApiError::NotFound { .. } => Some(404),
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Transport { .. }
            | ApiError::BadResponse { .. }
            | ApiError::InvalidUrl { .. } => None,
        }
    }

    /// Whether the server was not reached or did not answer.
    pub fn is_transport(&self) -> bool {
        matches!(self, ApiError::Transport { .. })
    }

    /// The error of a status no call expects: 403, 404, 410, 413 and 422
    /// get their own variant.
    pub(crate) fn from_status(call: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let call = call.to_owned();
        let message = server_message(headers, body);
        match status {
            403 => ApiError::Forbidden { call, message },
            404 => ApiError::NotFound { call, message },
            410 => ApiError::Gone { call, message },
            413 => ApiError::TooLarge { call, message },
            422 => ApiError::Orphaned { call, message },
            _ => ApiError::Status {
                call,
                status,
                message,
            },
        }
    }

    pub(crate) fn transport(call: &str, err: reqwest::Error) -> Self {
        let timeout = err.is_timeout();
        ApiError::Transport {
            call: call.to_owned(),
            message: describe_transport(err),
            timeout,
        }
    }

    pub(crate) fn bad_response(call: &str, reason: impl Into<String>) -> Self {
        ApiError::BadResponse {
            call: call.to_owned(),
            reason: reason.into(),
        }
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// The longest server message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 200;

/// What the server said about an error: GitLab's `{"message": ...}` (a
/// string or an object of field errors), Grape's `{"error": ...}`, object
/// storage's XML `<Message>`, or the text itself. One line, scrubbed.
pub(crate) fn server_message(headers: &HeaderMap, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let is_xml = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("xml"))
        || text.starts_with("<?xml")
        || text.starts_with("<Error>");
    let message = if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        match value.get("message").or_else(|| value.get("error")) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => value.to_string(),
        }
    } else if is_xml {
        xml_element(text, "Message")
            .or_else(|| xml_element(text, "Code"))
            .unwrap_or(text)
            .to_owned()
    } else {
        text.to_owned()
    };
    one_line(&scrub(&message))
}

/// The text of the first `<name>...</name>` in `xml`.
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].trim())
}

/// Whitespace runs become one space; long text is cut with `...`.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX_MESSAGE_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push_str("...");
    cut
}

/// Masks GitLab tokens (by their prefixes) and registration tokens in
/// text that may come back from the server or a library.
pub(crate) fn scrub(text: &str) -> String {
    let mut masker = TokenMasker::new(&["GR1348941".to_owned()]);
    let mut out = Vec::with_capacity(text.len());
    masker.push(text.as_bytes(), &mut out);
    masker.finish(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// reqwest's own message says little ("error sending request"); the causes
/// below it say what happened. The URL is left out.
fn describe_transport(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    one_line(&scrub(&parts.join(": ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{CONTENT_TYPE, HeaderValue};

    fn message(body: &str) -> String {
        server_message(&HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn gitlab_messages_are_read_as_strings_or_objects() {
        assert_eq!(message(r#"{"message":"403 Forbidden"}"#), "403 Forbidden");
        assert_eq!(
            message(r#"{"message":{"tag_list":["is invalid"]}}"#),
            r#"{"tag_list":["is invalid"]}"#
        );
        assert_eq!(
            message(r#"{"error":"token is missing"}"#),
            "token is missing"
        );
        assert_eq!(message("plain\n text "), "plain text");
    }

    #[test]
    fn object_storage_xml_gives_its_message() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(
            server_message(&headers, body.as_bytes()),
            "Request has expired"
        );
    }

    #[test]
    fn tokens_in_server_messages_are_masked() {
        let text = message(r#"{"message":"token glrt-t1_SECRET and GR1348941AbCdEf rejected"}"#);
        assert!(
            !text.contains("SECRET") && !text.contains("AbCdEf"),
            "{text}"
        );
        assert!(text.contains("glrt-[MASKED]"), "{text}");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(1000);
        let text = message(&long);
        assert_eq!(text.chars().count(), MAX_MESSAGE_CHARS + 3);
    }

    #[test]
    fn statuses_map_to_their_variants() {
        let h = HeaderMap::new();
        assert!(matches!(
            ApiError::from_status("POST runners", 410, &h, b""),
            ApiError::Gone { .. }
        ));
        assert!(matches!(
            ApiError::from_status("POST runners/verify", 422, &h, b""),
            ApiError::Orphaned { .. }
        ));
        let e = ApiError::from_status("PUT jobs/1", 500, &h, br#"{"message":"boom"}"#);
        assert_eq!(e.to_string(), "PUT jobs/1: unexpected status 500: boom");
        assert_eq!(e.status(), Some(500));
    }
}
