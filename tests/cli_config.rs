//! The agent's configuration and service commands as an operator runs
//! them: `list`, and `install`/`uninstall`/`start`/... against a unit
//! directory in a temp dir and a fake `systemctl` that records its calls.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::support::runner;

const TWO_RUNNERS: &str = "\
concurrent = 2

[[runners]]
  name = \"docker-one\"
  url = \"https://gitlab.example.com\"
  token = \"glrt-t1_SecretTokenValue123\"
  executor = \"docker\"

[[runners]]
  name = \"shell-two\"
  url = \"https://gitlab.other.example\"
  token = \"glrt-AnotherSecret456789\"
  executor = \"shell\"
";

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn list_prints_the_file_and_each_runner_with_its_short_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), TWO_RUNNERS);
    let out = runner(dir.path())
        .args(["list", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("Listing configured runners"),
        "{stdout}"
    );
    assert!(
        lines[0].ends_with(&format!("ConfigFile={}", path.display())),
        "{stdout}"
    );
    assert!(lines[1].starts_with("docker-one "), "{stdout}");
    assert!(
        lines[1].ends_with("Executor=docker Token=SecretTok URL=https://gitlab.example.com"),
        "{stdout}"
    );
    assert!(
        lines[2].ends_with("Executor=shell Token=AnotherSe URL=https://gitlab.other.example"),
        "{stdout}"
    );
    for secret in ["SecretTokenValue123", "AnotherSecret456789"] {
        assert!(!stdout.contains(secret), "full token printed:\n{stdout}");
        assert!(!stderr.contains(secret), "full token printed:\n{stderr}");
    }
}

#[test]
fn list_finds_the_file_through_runner_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), TWO_RUNNERS);
    runner(dir.path())
        .arg("list")
        .env("RUNNER_CONFIG", &path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "ConfigFile={}",
            path.display()
        )))
        .stdout(predicate::str::contains("shell-two"));
}

#[test]
fn list_warns_about_unknown_keys_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!("{TWO_RUNNERS}  [runners.docker]\n    imagee = \"alpine\"\n"),
    );
    runner(dir.path())
        .args(["list", "--config"])
        .arg(&path)
        .assert()
        .code(0)
        .stderr(predicate::str::contains(format!(
            "warning: {}:15: unknown key runners.docker.imagee",
            path.display()
        )));
}

#[test]
fn list_of_an_invalid_file_exits_1_naming_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "concurrent = \"four\"\n");
    runner(dir.path())
        .args(["list", "--config"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: {}:1:14: concurrent: invalid type: string \"four\"",
            path.display()
        )));
}

#[test]
fn list_of_a_missing_file_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    runner(dir.path())
        .args(["list", "--config", "nowhere.toml"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("cannot read").and(predicate::str::contains("nowhere.toml")),
        );
}

/// A unit directory and a fake `systemctl` that appends its arguments to
/// a log and fails for the verb in `FAKE_SYSTEMCTL_FAIL`.
struct FakeSystemd {
    root: tempfile::TempDir,
}

impl FakeSystemd {
    fn new() -> FakeSystemd {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("bin")).unwrap();
        std::fs::create_dir(root.path().join("units")).unwrap();
        let script = root.path().join("bin/systemctl");
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             echo \"$*\" >> \"$FAKE_SYSTEMCTL_LOG\"\n\
             if [ \"$1\" = \"$FAKE_SYSTEMCTL_FAIL\" ]; then exit \"${FAKE_SYSTEMCTL_STATUS:-1}\"; fi\n\
             exit 0\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeSystemd { root }
    }

    fn units(&self) -> PathBuf {
        self.root.path().join("units")
    }

    fn unit(&self, name: &str) -> PathBuf {
        self.units().join(format!("{name}.service"))
    }

    /// `runner <args>` with the fake first in PATH.
    fn runner(&self, cwd: &Path) -> assert_cmd::Command {
        let mut cmd = runner(cwd);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.root.path().join("bin")];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap())
            .env("RUNNER_SYSTEMD_DIR", self.units())
            .env("FAKE_SYSTEMCTL_LOG", self.root.path().join("calls"))
            .env_remove("FAKE_SYSTEMCTL_FAIL");
        cmd
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn install_writes_a_graceful_unit_and_enables_it() {
    let systemd = FakeSystemd::new();
    let work = tempfile::tempdir().unwrap();
    systemd
        .runner(work.path())
        .args([
            "install",
            "--service",
            "ci-runner",
            "--user",
            "gitlab-runner",
            "--config",
            "conf/config.toml",
            "--working-directory",
            "/srv/ci",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Installed"))
        .stderr(predicate::str::contains("does not exist yet"));
    let unit = std::fs::read_to_string(systemd.unit("ci-runner")).unwrap();
    let exe = assert_cmd::cargo::cargo_bin("runner")
        .canonicalize()
        .unwrap();
    let config = work.path().join("conf/config.toml");
    let lines: Vec<&str> = unit.lines().collect();
    for expected in [
        format!(
            "ExecStart={} run --config {} --working-directory /srv/ci",
            exe.display(),
            config.display()
        ),
        "User=gitlab-runner".to_owned(),
        "KillSignal=SIGQUIT".to_owned(),
        "TimeoutStopSec=7200".to_owned(),
        "Restart=on-failure".to_owned(),
        "RestartSec=5".to_owned(),
        "ExecReload=/bin/kill -HUP $MAINPID".to_owned(),
        "[Install]".to_owned(),
        "WantedBy=multi-user.target".to_owned(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "{expected:?} missing:\n{unit}"
        );
    }
    let mode = std::fs::metadata(systemd.unit("ci-runner"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(systemd.calls(), ["daemon-reload", "enable ci-runner"]);
}

#[test]
fn install_over_an_existing_unit_exits_1_and_changes_nothing() {
    let systemd = FakeSystemd::new();
    std::fs::write(systemd.unit("runner"), "[Service]\n# mine\n").unwrap();
    systemd
        .runner(systemd.root.path())
        .arg("install")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("runner.service already exists"));
    assert_eq!(
        std::fs::read_to_string(systemd.unit("runner")).unwrap(),
        "[Service]\n# mine\n"
    );
    assert!(systemd.calls().is_empty());
}

#[test]
fn install_without_systemctl_exits_3_and_writes_nothing() {
    let systemd = FakeSystemd::new();
    let empty = tempfile::tempdir().unwrap();
    systemd
        .runner(systemd.root.path())
        .env("PATH", empty.path())
        .arg("install")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("systemctl not found in PATH"));
    assert!(!systemd.unit("runner").exists());
}

#[test]
fn install_into_a_unit_dir_it_cannot_write_names_the_path() {
    let systemd = FakeSystemd::new();
    let missing = systemd.root.path().join("no/such/dir");
    systemd
        .runner(systemd.root.path())
        .env("RUNNER_SYSTEMD_DIR", &missing)
        .arg("install")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "cannot write {}",
            missing.join("runner.service").display()
        )));
    assert!(systemd.calls().is_empty());
}

#[test]
fn install_removes_its_unit_again_when_enabling_fails() {
    let systemd = FakeSystemd::new();
    systemd
        .runner(systemd.root.path())
        .env("FAKE_SYSTEMCTL_FAIL", "enable")
        .arg("install")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("`systemctl enable runner` failed"));
    assert!(!systemd.unit("runner").exists());
    assert_eq!(
        systemd.calls(),
        ["daemon-reload", "enable runner", "daemon-reload"]
    );
}

#[test]
fn uninstall_disables_removes_the_unit_and_reloads() {
    let systemd = FakeSystemd::new();
    let work = systemd.root.path();
    systemd.runner(work).arg("install").assert().code(0);
    systemd.runner(work).arg("uninstall").assert().code(0);
    assert!(!systemd.unit("runner").exists());
    assert_eq!(
        systemd.calls(),
        [
            "daemon-reload",
            "enable runner",
            "disable runner",
            "daemon-reload"
        ]
    );
    // Nothing left to uninstall.
    systemd
        .runner(work)
        .arg("uninstall")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not installed"));
}

#[test]
fn start_stop_restart_status_run_systemctl_and_pass_its_status_through() {
    let systemd = FakeSystemd::new();
    let work = systemd.root.path();
    for verb in ["start", "stop", "restart", "status"] {
        systemd
            .runner(work)
            .args([verb, "--service", "ci"])
            .assert()
            .code(0);
    }
    assert_eq!(
        systemd.calls(),
        ["start ci", "stop ci", "restart ci", "status ci"]
    );
    // systemctl status says 3 for a stopped service; so does runner status.
    systemd
        .runner(work)
        .env("FAKE_SYSTEMCTL_FAIL", "status")
        .env("FAKE_SYSTEMCTL_STATUS", "3")
        .arg("status")
        .assert()
        .code(3);
}

#[test]
fn a_service_name_that_could_leave_the_unit_dir_is_a_usage_error() {
    let systemd = FakeSystemd::new();
    systemd
        .runner(systemd.root.path())
        .args(["install", "--service", "../../etc/evil"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid service name"));
    assert!(systemd.calls().is_empty());
    assert_eq!(std::fs::read_dir(systemd.units()).unwrap().count(), 0);
}
