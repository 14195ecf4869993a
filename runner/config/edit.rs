//! Changing `config.toml` the way `register` and token rotation need,
//! keeping the operator's comments and layout (removal is in `remove.rs`).
//!
//! `toml_edit` keeps every comment, blank line and formatting choice of the
//! parts it is not told to change. Each edit reads the file under a lock
//! on its directory, checks that the result still loads, and replaces the
//! file atomically with mode 0600 (it holds tokens).

use std::path::Path;
use std::time::SystemTime;

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use super::atomic;
use super::load::{ConfigError, parse_config};
use super::remove::RunnerSelector;
use super::runner::{ExecutorKind, RunnerShell};
use super::values::Timestamp;

/// What a new file holds before its first runner: gitlab-runner's
/// starting point (`check_interval = 0` means its default).
const NEW_FILE: &str = "concurrent = 1\ncheck_interval = 0\n";

/// Indentation of a runner's keys and of its sub-tables' keys, as
/// gitlab-runner lays the file out.
const RUNNER_INDENT: &str = "  ";
const SUBTABLE_INDENT: &str = "    ";

/// A runner to append, as `register` learnt it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRunner {
    pub name: String,
    pub url: String,
    /// GitLab's id of the runner, when the server gave one.
    pub id: Option<u64>,
    pub token: String,
    pub token_obtained_at: SystemTime,
    /// `None` for a token that does not expire.
    pub token_expires_at: Option<SystemTime>,
    pub executor: ExecutorKind,
    pub shell: Option<RunnerShell>,
    /// `[runners.docker] image`, the image of jobs that name none.
    pub docker_image: Option<String>,
}

/// A rotated token and its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUpdate {
    pub token: String,
    pub obtained_at: SystemTime,
    /// `None` for a token that does not expire.
    pub expires_at: Option<SystemTime>,
}

/// Appends `runner` as a new `[[runners]]` table at the end of `path`,
/// creating the file (and its directory, mode 0700) when it does not
/// exist.
pub fn add_runner(path: &Path, runner: &NewRunner) -> Result<(), ConfigError> {
    edit(path, true, |doc| {
        let position = last_position(doc.as_table()) + 1;
        let runners = doc
            .entry("runners")
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        // `runners = []`, as some tools write an empty list, takes tables.
        if runners.as_array().is_some_and(|a| a.is_empty()) {
            *runners = Item::ArrayOfTables(ArrayOfTables::new());
        }
        let Some(runners) = runners.as_array_of_tables_mut() else {
            return Err("`runners` is not a list of [[runners]] tables".to_owned());
        };
        // Comments after the last table stay the file's last lines, below
        // the new runner.
        runners.push(runner_table(runner, position));
        Ok(())
    })
}

/// Replaces the token of the runner whose token is `current`, with its
/// times (token rotation). Comments and layout around the values stay.
pub fn update_runner_token(
    path: &Path,
    current: &str,
    update: &TokenUpdate,
) -> Result<(), ConfigError> {
    let mut found = false;
    edit(path, false, |doc| {
        let Some(table) = doc
            .get_mut("runners")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|runners| {
                runners
                    .iter_mut()
                    .find(|t| t.get("token").and_then(Item::as_str) == Some(current))
            })
        else {
            return Ok(());
        };
        found = true;
        let indent = table
            .key("token")
            .and_then(|k| k.leaf_decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or(RUNNER_INDENT)
            .to_owned();
        set_keeping_decor(table, "token", Value::from(update.token.as_str()), &indent);
        set_keeping_decor(
            table,
            "token_obtained_at",
            datetime(Some(update.obtained_at)),
            &indent,
        );
        set_keeping_decor(
            table,
            "token_expires_at",
            datetime(update.expires_at),
            &indent,
        );
        Ok(())
    })?;
    if !found {
        return Err(no_such_runner(path, RunnerSelector::Token(current)));
    }
    Ok(())
}

pub(super) fn no_such_runner(path: &Path, which: RunnerSelector<'_>) -> ConfigError {
    ConfigError::NoSuchRunner {
        path: path.to_owned(),
        what: match which {
            RunnerSelector::Name(name) => format!("name {name:?}"),
            // Never the token itself: error messages end up in logs.
            RunnerSelector::Token(token) => {
                format!("token {}...", super::runner::short_token(token))
            }
            RunnerSelector::All => "any name".to_owned(),
        },
    }
}

/// Read, change, check, write; under the directory's lock.
pub(super) fn edit(
    path: &Path,
    create: bool,
    change: impl FnOnce(&mut DocumentMut) -> Result<(), String>,
) -> Result<(), ConfigError> {
    let dir = atomic::parent_dir(path);
    let write_error = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    if create {
        atomic::create_private_dir(dir).map_err(write_error)?;
    }
    // A missing directory is reported as the missing file it holds.
    let _lock = atomic::lock_dir(dir).map_err(|source| ConfigError::Read {
        path: if source.kind() == std::io::ErrorKind::NotFound {
            path.to_owned()
        } else {
            dir.to_owned()
        },
        source,
    })?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => NEW_FILE.to_owned(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    // Refuse to edit what does not load: the operator should see the
    // problem rather than have it carried along.
    parse_config(path, &text)?;
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Invalid {
                path: path.to_owned(),
                line: None,
                column: None,
                key: None,
                message: e.message().to_owned(),
            })?;
    change(&mut doc).map_err(|message| ConfigError::Invalid {
        path: path.to_owned(),
        line: None,
        column: None,
        key: None,
        message,
    })?;
    let new_text = doc.to_string();
    if new_text == text {
        return Ok(());
    }
    parse_config(path, &new_text)?;
    atomic::write_atomic(path, new_text.as_bytes(), 0o600).map_err(write_error)
}

fn runner_table(runner: &NewRunner, position: isize) -> Table {
    let mut table = Table::new();
    table.set_position(Some(position));
    // A blank line between the file so far and the new runner.
    table.decor_mut().set_prefix("\n");
    let mut add = |key: &str, value: Value| put(&mut table, key, value, RUNNER_INDENT);
    add("name", Value::from(runner.name.as_str()));
    add("url", Value::from(runner.url.as_str()));
    if let Some(id) = runner.id {
        add("id", Value::from(i64::try_from(id).unwrap_or(i64::MAX)));
    }
    add("token", Value::from(runner.token.as_str()));
    add(
        "token_obtained_at",
        datetime(Some(runner.token_obtained_at)),
    );
    add("token_expires_at", datetime(runner.token_expires_at));
    add("executor", Value::from(runner.executor.as_str()));
    if let Some(shell) = runner.shell {
        add("shell", Value::from(shell.as_str()));
    }
    // gitlab-runner writes these two sections empty for every runner; an
    // operator who opens the file finds where the settings go.
    let mut next = position;
    for name in ["custom_build_dir", "cache"] {
        next += 1;
        table.insert(name, Item::Table(sub_table(next)));
    }
    if let Some(image) = &runner.docker_image {
        next += 1;
        let mut docker = sub_table(next);
        put_in(&mut docker, "image", Value::from(image.as_str()));
        table.insert("docker", Item::Table(docker));
    }
    table
}

fn sub_table(position: isize) -> Table {
    let mut table = Table::new();
    table.set_implicit(false);
    table.set_position(Some(position));
    table.decor_mut().set_prefix(RUNNER_INDENT);
    table
}

fn put_in(table: &mut Table, key: &str, value: Value) {
    put(table, key, value, SUBTABLE_INDENT);
}

fn put(table: &mut Table, key: &str, value: Value, indent: &str) {
    table.insert(key, Item::Value(value));
    if let Some(mut key) = table.key_mut(key) {
        key.leaf_decor_mut().set_prefix(indent);
    }
}

/// Sets `key`, keeping the spacing and comment around an existing value;
/// a new key gets `indent`.
fn set_keeping_decor(table: &mut Table, key: &str, value: Value, indent: &str) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => put(table, key, value, indent),
    }
}

/// A TOML datetime in UTC; Go's zero time for "none", which is what
/// gitlab-runner writes and reads back as unset.
fn datetime(time: Option<SystemTime>) -> Value {
    let stamp = time.map_or_else(Timestamp::go_zero, Timestamp::from_system_time);
    match stamp.to_string().parse::<toml_edit::Datetime>() {
        Ok(datetime) => Value::from(datetime),
        // Display always writes RFC 3339; a string is the safe fallback.
        Err(_) => Value::from(stamp.to_string()),
    }
}

/// The highest table position in the document, so new tables go last.
fn last_position(table: &Table) -> isize {
    let mut last = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        match item {
            Item::Table(t) => last = last.max(last_position(t)),
            Item::ArrayOfTables(tables) => {
                for t in tables.iter() {
                    last = last.max(last_position(t));
                }
            }
            _ => {}
        }
    }
    last
}

#[cfg(test)]
pub(super) mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::config::{load_config, remove_runners};

    const HAND_WRITTEN: &str = "\
# Build farm, rack 3.
concurrent = 4   # two per core

check_interval    = 3


[session_server]
  # The terminal.
  session_timeout = 1800

# --- runners ---

[[runners]]
  name = \"old\" # the first one
  url = \"https://gitlab.example.com\"
  token = \"glrt-OLDTOKEN123\"
  token_obtained_at = 2025-01-01T00:00:00Z # rotated by the agent
  token_expires_at = 2026-01-01T00:00:00Z
  executor = \"shell\"

  # Docker settings, unused by the shell.
  [runners.docker]
    image = \"alpine\"

# end of file
";

    pub(crate) fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    pub(crate) fn new_runner(name: &str, token: &str) -> NewRunner {
        NewRunner {
            name: name.to_owned(),
            url: "https://gitlab.example.com".to_owned(),
            id: Some(7),
            token: token.to_owned(),
            // 2026-03-01T12:00:00Z
            token_obtained_at: at(1_772_366_400),
            token_expires_at: None,
            executor: ExecutorKind::Docker,
            shell: Some(RunnerShell::Bash),
            docker_image: Some("alpine:3.20".to_owned()),
        }
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    pub(crate) fn hand_written_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, HAND_WRITTEN).unwrap();
        (dir, path)
    }

    pub(crate) fn names(path: &Path) -> Vec<String> {
        load_config(path)
            .unwrap()
            .config
            .runners
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn appending_keeps_every_byte_of_a_hand_written_file_around_the_new_table() {
        let (_dir, path) = hand_written_file();
        add_runner(&path, &new_runner("new", "glrt-NEWTOKEN456")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let appended = "\n\
             [[runners]]\n  \
               name = \"new\"\n  \
               url = \"https://gitlab.example.com\"\n  \
               id = 7\n  \
               token = \"glrt-NEWTOKEN456\"\n  \
               token_obtained_at = 2026-03-01T12:00:00Z\n  \
               token_expires_at = 0001-01-01T00:00:00Z\n  \
               executor = \"docker\"\n  \
               shell = \"bash\"\n  \
               [runners.custom_build_dir]\n  \
               [runners.cache]\n  \
               [runners.docker]\n    \
                 image = \"alpine:3.20\"\n";
        // After the last table, before the comments that end the file.
        let (body, end) = HAND_WRITTEN.split_at(HAND_WRITTEN.find("\n# end of file").unwrap());
        assert_eq!(text, format!("{body}{appended}{end}"));
        let runners = load_config(&path).unwrap().config.runners;
        assert_eq!(runners.len(), 2);
        assert_eq!(runners[1].token_expires_at, None);
        assert_eq!(runners[1].docker.as_ref().unwrap().image, "alpine:3.20");
    }

    #[test]
    fn a_missing_file_is_created_with_defaults_mode_0600_in_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/runner/config.toml");
        let mut runner = new_runner("first", "glrt-FIRST");
        runner.executor = ExecutorKind::Shell;
        runner.docker_image = None;
        add_runner(&path, &runner).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("concurrent = 1\ncheck_interval = 0\n\n[[runners]]\n"),
            "{text}"
        );
        assert!(!text.contains("[runners.docker]"), "{text}");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&dir.path().join("etc/runner")), 0o700);
        assert_eq!(mode_of(&dir.path().join("etc")), 0o700);
        let config = load_config(&path).unwrap().config;
        assert_eq!(config.concurrent.get(), 1);
        assert_eq!(config.runners[0].executor, Some(ExecutorKind::Shell));
    }

    #[test]
    fn an_empty_inline_runners_list_takes_the_new_runner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 1\nrunners = []\n").unwrap();
        add_runner(&path, &new_runner("a", "glrt-A")).unwrap();
        assert_eq!(names(&path), ["a"]);
        std::fs::write(
            &path,
            "concurrent = 1\nrunners = [{ url = \"u\", token = \"t\" }]\n",
        )
        .unwrap();
        let err = add_runner(&path, &new_runner("b", "glrt-B")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`runners` is not a list of [[runners]] tables"),
            "{err}"
        );
    }

    #[test]
    fn an_edited_file_is_mode_0600_whatever_mode_it_had() {
        let (_dir, path) = hand_written_file();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        add_runner(&path, &new_runner("new", "glrt-NEW")).unwrap();
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn naming_a_runner_the_file_lacks_fails_and_changes_nothing() {
        let (_dir, path) = hand_written_file();
        let err = remove_runners(&path, RunnerSelector::Name("nope")).unwrap_err();
        assert!(matches!(err, ConfigError::NoSuchRunner { .. }));
        assert!(
            err.to_string()
                .ends_with("config.toml: no runner with name \"nope\""),
            "{err}"
        );
        let err = update_runner_token(
            &path,
            "glrt-SECRETVALUE",
            &TokenUpdate {
                token: "x".into(),
                obtained_at: at(0),
                expires_at: None,
            },
        )
        .unwrap_err();
        // The message never holds a whole token.
        assert!(!err.to_string().contains("glrt-SECRETVALUE"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), HAND_WRITTEN);
    }

    #[test]
    fn token_rotation_replaces_the_token_and_its_times_keeping_comments() {
        let (_dir, path) = hand_written_file();
        update_runner_token(
            &path,
            "glrt-OLDTOKEN123",
            &TokenUpdate {
                token: "glrt-ROTATED789".to_owned(),
                // 2026-06-01T00:00:00Z and 2027-06-01T00:00:00Z
                obtained_at: at(1_780_272_000),
                expires_at: Some(at(1_811_808_000)),
            },
        )
        .unwrap();
        let expected = HAND_WRITTEN
            .replace("glrt-OLDTOKEN123", "glrt-ROTATED789")
            .replace(
                "token_obtained_at = 2025-01-01T00:00:00Z # rotated",
                "token_obtained_at = 2026-06-01T00:00:00Z # rotated",
            )
            .replace(
                "token_expires_at = 2026-01-01T00:00:00Z",
                "token_expires_at = 2027-06-01T00:00:00Z",
            );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        let runner = &load_config(&path).unwrap().config.runners[0];
        assert_eq!(runner.token, "glrt-ROTATED789");
        assert_eq!(runner.token_expires_at(), Some(at(1_811_808_000)));
    }

    #[test]
    fn token_rotation_adds_missing_times_and_writes_go_zero_for_no_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "concurrent = 1\n[[runners]]\n    url = \"https://x\"\n    token = \"glrt-A\"\n",
        )
        .unwrap();
        update_runner_token(
            &path,
            "glrt-A",
            &TokenUpdate {
                token: "glrt-B".to_owned(),
                obtained_at: at(1_780_272_000),
                expires_at: None,
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "concurrent = 1\n[[runners]]\n    url = \"https://x\"\n    token = \"glrt-B\"\n    token_obtained_at = 2026-06-01T00:00:00Z\n    token_expires_at = 0001-01-01T00:00:00Z\n"
        );
    }

    #[test]
    fn a_file_that_does_not_load_is_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 0\n").unwrap();
        let err = add_runner(&path, &new_runner("a", "glrt-A")).unwrap_err();
        assert!(
            err.to_string().contains("config.toml:1:14: concurrent"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "concurrent = 0\n");
    }

    #[test]
    fn concurrent_edits_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..5 {
                        let name = format!("r{t}-{i}");
                        add_runner(&path, &new_runner(&name, &format!("glrt-{name}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(names(&path).len(), 20);
    }
}
