//! The systemd unit `runner install` writes.

use std::path::Path;

/// What goes into the unit.
pub(crate) struct UnitSpec<'a> {
    /// The service's name, for the description.
    pub name: &'a str,
    /// This binary, absolute.
    pub exe: &'a Path,
    /// The agent's `config.toml`, absolute.
    pub config: &'a Path,
    /// The agent's working directory, absolute.
    pub working_directory: &'a Path,
    pub user: Option<&'a str>,
}

/// How long `systemctl stop` waits for running jobs before systemd kills
/// what is left. GitLab's default job timeout is one hour; twice that lets
/// the longest usual job finish instead of failing it halfway.
const STOP_TIMEOUT_SECONDS: u32 = 2 * 3600;

/// The unit file's text.
pub(crate) fn render_unit(spec: &UnitSpec<'_>) -> String {
    let exec_start = [
        spec.exe.to_string_lossy().as_ref(),
        "run",
        "--config",
        spec.config.to_string_lossy().as_ref(),
        "--working-directory",
        spec.working_directory.to_string_lossy().as_ref(),
    ]
    .map(quote)
    .join(" ");
    let user = spec
        .user
        .map(|u| format!("User={}\n", escape_specifiers(u)))
        .unwrap_or_default();
    format!(
        "\
# Written by `runner install`; `runner uninstall` removes it.
[Unit]
Description=GitLab-compatible CI runner ({name})
After=network-online.target
Wants=network-online.target

[Service]
ExecStart={exec_start}
{user}\
# SIGQUIT is the runner's graceful stop: it takes no more jobs and lets the
# running ones finish. KillMode=mixed sends it to the runner alone; the
# jobs' processes share its control group and must not get it.
KillSignal=SIGQUIT
KillMode=mixed
# Running jobs may need a long time to finish; only after this does
# systemd kill whatever is left.
TimeoutStopSec={STOP_TIMEOUT_SECONDS}
Restart=on-failure
RestartSec=5
# Reloads config.toml.
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
",
        name = escape_specifiers(spec.name),
    )
}

/// One argument of `ExecStart=` as systemd splits and expands it: `%` and
/// `$` are escaped so they stay literal, and an argument with spaces,
/// quotes or backslashes is double-quoted with C-style escapes.
pub(crate) fn quote(arg: &str) -> String {
    let escaped = escape_specifiers(arg).replace('$', "$$");
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%` starts a specifier in every unit setting.
fn escape_specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

/// A service name systemd accepts as a unit name, and that stays inside
/// the unit directory.
pub(crate) fn check_service_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 240
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid service name {name:?}: use letters, digits and _ - . : @ (e.g. `runner`)"
        ))
    }
}

/// A user name that cannot break out of its line in the unit.
pub(crate) fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!("invalid user {user:?}: expected a user name or id"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_arguments_are_quoted_as_systemd_reads_them() {
        assert_eq!(quote("/usr/bin/runner"), "/usr/bin/runner");
        assert_eq!(quote("/srv/my runner"), "\"/srv/my runner\"");
        assert_eq!(quote("/srv/100%"), "/srv/100%%");
        assert_eq!(quote("/srv/$HOME"), "/srv/$$HOME");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn the_unit_stops_gracefully_and_restarts_on_failure() {
        let unit = render_unit(&UnitSpec {
            name: "runner",
            exe: Path::new("/usr/local/bin/runner"),
            config: Path::new("/etc/runner/config.toml"),
            working_directory: Path::new("/home/ci dir"),
            user: Some("ci"),
        });
        let lines: Vec<&str> = unit.lines().collect();
        for expected in [
            "ExecStart=/usr/local/bin/runner run --config /etc/runner/config.toml --working-directory \"/home/ci dir\"",
            "User=ci",
            "KillSignal=SIGQUIT",
            "KillMode=mixed",
            "TimeoutStopSec=7200",
            "Restart=on-failure",
            "RestartSec=5",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                lines.contains(&expected),
                "{expected:?} missing from\n{unit}"
            );
        }
        let without_user = render_unit(&UnitSpec {
            name: "runner",
            exe: Path::new("/r"),
            config: Path::new("/c"),
            working_directory: Path::new("/w"),
            user: None,
        });
        assert!(!without_user.contains("User="), "{without_user}");
    }

    #[test]
    fn service_names_and_users_cannot_escape_their_place() {
        assert!(check_service_name("runner").is_ok());
        assert!(check_service_name("runner-2@ci.a_b").is_ok());
        for bad in ["", "../etc/x", "a/b", "-x", ".hidden", "a b", "a\nb"] {
            assert!(check_service_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_user("gitlab-runner").is_ok());
        assert!(check_user("1000").is_ok());
        for bad in ["", "ci\nExecStartPre=/bin/evil", "a b"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
    }
}
