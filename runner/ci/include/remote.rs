//! `include:remote` and `include:template`: files fetched over HTTP and
//! kept in the on-disk cache for `--offline` runs (rules 49).

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::context::IncludeContext;
use super::entry::{has_yaml_extension, is_url};
use super::fetch::{FetchError, cache_path, cache_read, cache_write};
use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;

/// Fetches an `include:remote` URL.
pub(crate) fn fetch_remote(
    ctx: &IncludeContext,
    url: &str,
    integrity: Option<&str>,
    span: Span,
    time_left: Duration,
) -> Result<String, Diagnostic> {
    if !has_yaml_extension(url) {
        return Err(Diagnostic::config(
            span,
            format!("Included file `{url}` does not have YAML extension!"),
        ));
    }
    if !is_url(url) {
        return Err(Diagnostic::config(
            span,
            format!("Remote file `{url}` does not have a valid address!"),
        ));
    }
    let text = get_cached(ctx, url, time_left).map_err(|e| {
        let why = match e {
            Miss::Offline => "it is not in the cache and the run is offline".to_string(),
            Miss::Fetch(FetchError::Status(code)) => format!("of HTTP code `{code}` error"),
            Miss::Fetch(FetchError::Timeout) => "of a timeout error".to_string(),
            Miss::Fetch(other) => format!("of a socket error ({other})"),
        };
        Diagnostic::include_unreachable(
            span,
            format!("Remote file `{url}` could not be fetched because {why}!"),
        )
    })?;
    if let Some(expected) = integrity.and_then(|i| i.strip_prefix("sha256-")) {
        let actual = base64_encode(&Sha256::digest(text.as_bytes()));
        if actual != expected {
            return Err(Diagnostic::config(
                span,
                format!(
                    "Remote file `{url}` failed the integrity check: its SHA-256 is `sha256-{actual}`"
                ),
            ));
        }
    }
    if text.trim().is_empty() {
        return Err(Diagnostic::config(
            span,
            format!("Included file `{url}` is empty or does not exist!"),
        ));
    }
    Ok(text)
}

/// Fetches an `include:template` from GitLab's template tree.
pub(crate) fn fetch_template(
    ctx: &IncludeContext,
    name: &str,
    span: Span,
    time_left: Duration,
) -> Result<String, Diagnostic> {
    if !has_yaml_extension(name) {
        return Err(Diagnostic::config(
            span,
            format!("Included file `{name}` does not have YAML extension!"),
        ));
    }
    if !name.ends_with(".gitlab-ci.yml") {
        return Err(Diagnostic::config(
            span,
            format!("Template file `{name}` is not a valid location!"),
        ));
    }
    let url = format!(
        "{}/{}",
        ctx.template_base_url.trim_end_matches('/'),
        name.trim_start_matches('/').replace(' ', "%20")
    );
    let missing = || {
        Diagnostic::config(
            span,
            format!("Included file `{name}` is empty or does not exist!"),
        )
    };
    let text = get_cached(ctx, &url, time_left).map_err(|e| match e {
        Miss::Fetch(FetchError::Status(404)) => missing(),
        Miss::Offline => Diagnostic::include_unreachable(
            span,
            format!("Template file `{name}` could not be fetched: it is not in the cache and the run is offline"),
        ),
        Miss::Fetch(other) => Diagnostic::include_unreachable(
            span,
            format!("Template file `{name}` could not be fetched from {url}: {other}"),
        ),
    })?;
    if text.trim().is_empty() {
        return Err(missing());
    }
    Ok(text)
}

enum Miss {
    Offline,
    Fetch(FetchError),
}

/// Offline: the cache only. Online: the network, refreshing the cache.
fn get_cached(ctx: &IncludeContext, url: &str, time_left: Duration) -> Result<String, Miss> {
    let path = cache_path(&ctx.cache_dir, "remote", url);
    if ctx.offline {
        return cache_read(&path).ok_or(Miss::Offline);
    }
    if time_left.is_zero() {
        return Err(Miss::Fetch(FetchError::Timeout));
    }
    let text = ctx.fetcher.get(url, time_left).map_err(Miss::Fetch)?;
    cache_write(&path, &text);
    Ok(text)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 (as Ruby's `strict_decode64`): padded, no
/// whitespace. `None` when the text is not valid base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = BASE64.iter().position(|&b| b == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_strictness() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd"] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"abcd"), "YWJjZA==");
        assert!(base64_decode("YWJjZA=").is_none());
        assert!(base64_decode("YW=jZA==").is_none());
        assert!(base64_decode("YWJj ZA=").is_none());
    }
}

#[cfg(test)]
pub(crate) mod tests_http {
    //! A tiny HTTP server for tests: serves fixed paths, 404 otherwise.

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(crate) struct Server {
        pub base: String,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Server {
        pub(crate) fn start(files: Vec<(&'static str, &'static str)>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            listener.set_nonblocking(true).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request = String::new();
                    let _ = reader.read_line(&mut request);
                    // Skip the headers.
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let (status, body) = match files.iter().find(|(p, _)| *p == path) {
                        Some((_, body)) => ("200 OK", *body),
                        None => ("404 Not Found", "not found"),
                    };
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            Server {
                base,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests_fetch {
    use super::tests_http::Server;
    use super::*;
    use crate::ci::diag::DiagnosticKind;
    use crate::ci::include::load_config;
    use crate::ci::source::{SourceId, Sources};

    fn ctx(dir: &std::path::Path) -> IncludeContext {
        IncludeContext::new(dir, "https://gitlab.example.com", dir.join("cache"))
    }

    fn span() -> Span {
        Span::new(SourceId(1), 2, 3)
    }

    #[test]
    fn rule_49_remote_files_are_fetched_cached_and_read_offline() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx(dir.path());
        let server = Server::start(vec![("/ci/a.yml", "job:\n  script: remote\n")]);
        let url = format!("{}/ci/a.yml", server.base);
        let text = fetch_remote(&ctx, &url, None, span(), Duration::from_secs(10)).unwrap();
        assert_eq!(text, "job:\n  script: remote\n");
        drop(server);
        ctx.offline = true;
        let text = fetch_remote(&ctx, &url, None, span(), Duration::from_secs(10)).unwrap();
        assert_eq!(text, "job:\n  script: remote\n");
        let other = url.replace("a.yml", "b.yml");
        let err = fetch_remote(&ctx, &other, None, span(), Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::IncludeUnreachable);
    }

    #[test]
    fn a_remote_404_is_unreachable_and_names_the_url_and_code() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        let server = Server::start(vec![]);
        let url = format!("{}/missing.yml", server.base);
        let err = fetch_remote(&ctx, &url, None, span(), Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::IncludeUnreachable);
        assert_eq!(
            err.message,
            format!("Remote file `{url}` could not be fetched because of HTTP code `404` error!")
        );
        assert_eq!(err.span, span());
    }

    #[test]
    fn a_refused_connection_is_unreachable_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        // Bind then drop a listener so the port is (almost surely) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/a.yml");
        let err = fetch_remote(&ctx, &url, None, span(), Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::IncludeUnreachable);
        assert!(err.message.starts_with(&format!(
            "Remote file `{url}` could not be fetched because of a socket error ("
        )));
    }

    #[test]
    fn remote_locations_need_a_yaml_extension_and_a_valid_address() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        let t = Duration::from_secs(1);
        let err = fetch_remote(&ctx, "https://x/a.txt", None, span(), t).unwrap_err();
        assert_eq!(
            err.message,
            "Included file `https://x/a.txt` does not have YAML extension!"
        );
        let err = fetch_remote(&ctx, "ftp://x/a.yml", None, span(), t).unwrap_err();
        assert_eq!(
            err.message,
            "Remote file `ftp://x/a.yml` does not have a valid address!"
        );
    }

    #[test]
    fn integrity_is_checked_against_the_sha256_of_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        let body = "a: 1\n";
        let server = Server::start(vec![("/a.yml", body)]);
        let url = format!("{}/a.yml", server.base);
        let good = format!("sha256-{}", base64_encode(&Sha256::digest(body.as_bytes())));
        let t = Duration::from_secs(10);
        assert!(fetch_remote(&ctx, &url, Some(&good), span(), t).is_ok());
        let bad = format!("sha256-{}", base64_encode(&[0; 32]));
        let err = fetch_remote(&ctx, &url, Some(&bad), span(), t).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::Config);
    }

    #[test]
    fn templates_come_from_the_template_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx(dir.path());
        let server = Server::start(vec![(
            "/templates/Jobs/Build.gitlab-ci.yml",
            "build:\n  script: b\n",
        )]);
        ctx.template_base_url = format!("{}/templates", server.base);
        let t = Duration::from_secs(10);
        let text = fetch_template(&ctx, "Jobs/Build.gitlab-ci.yml", span(), t).unwrap();
        assert!(text.starts_with("build:"));
        let err = fetch_template(&ctx, "Nope.gitlab-ci.yml", span(), t).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::Config);
        assert_eq!(
            err.message,
            "Included file `Nope.gitlab-ci.yml` is empty or does not exist!"
        );
        let err = fetch_template(&ctx, "Nope.yml", span(), t).unwrap_err();
        assert_eq!(
            err.message,
            "Template file `Nope.yml` is not a valid location!"
        );
    }

    #[test]
    fn a_remote_include_loads_through_http_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path());
        let server = Server::start(vec![
            ("/a.yml", "include: b.yml\njob:\n  script: a\n"),
            ("/b.yml", "x: 1\n"),
        ]);
        let mut sources = Sources::new();
        let root = sources.add(
            ".gitlab-ci.yml",
            format!("include: '{}/a.yml'\n", server.base),
        );
        let errors = load_config(root, &mut sources, &ctx).unwrap_err();
        // `b.yml` is local to a project the remote file does not have.
        assert_eq!(
            errors.0[0].message,
            "Local file `b.yml` does not have project!"
        );
        let root = sources.add(
            ".gitlab-ci.yml",
            format!("include: '{}/b.yml'\ny: 2\n", server.base),
        );
        let out = load_config(root, &mut sources, &ctx).unwrap();
        assert_eq!(out.as_map().unwrap().keys().collect::<Vec<_>>(), ["x", "y"]);
    }
}
