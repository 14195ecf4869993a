//! Just enough `multipart/form-data` parsing for artifact uploads.

/// One part of a form.
pub(super) struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content: Vec<u8>,
}

/// The parts of `body`, sent with `content_type`; `None` when it is not a
/// well-formed multipart body.
pub(super) fn parse(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut rest = &body[find(body, &delimiter)? + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&rest[..header_end]).ok()?;
        rest = &rest[header_end + 4..];
        let content_end = find(rest, &next_delimiter)?;
        let (name, file_name) = disposition(headers)?;
        parts.push(Part {
            name,
            file_name,
            content: rest[..content_end].to_vec(),
        });
        rest = &rest[content_end + next_delimiter.len()..];
    }
}

/// `name` and `filename` of the part's `Content-Disposition`.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let mut name = None;
    let mut file_name = None;
    for param in line.split(';').skip(1) {
        let (key, value) = param.trim().split_once('=')?;
        let value = value.trim_matches('"').to_owned();
        match key {
            "name" => name = Some(value),
            "filename" => file_name = Some(value),
            _ => {}
        }
    }
    Some((name?, file_name))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
