//! `runner install`, `uninstall`, `start`, `stop`, `restart` and `status`:
//! the agent as a systemd service.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use super::unit::{UnitSpec, check_service_name, check_user, render_unit};
use crate::cli::{InstallArgs, ServiceArgs};
use crate::config::{resolve_config_path, write_atomic};
use crate::errors::{RunnerError, exit};

/// Where units go; the variable lets tests (and unusual systems) choose.
const UNIT_DIR_ENV: &str = "RUNNER_SYSTEMD_DIR";
const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";

/// Writes `<name>.service`, then `systemctl daemon-reload` and `systemctl
/// enable <name>`. An existing unit is left alone (exit 1); if systemctl
/// fails, the new unit is removed again.
pub fn install(args: &InstallArgs) -> Result<i32, RunnerError> {
    let name = args.service.service.as_str();
    check_service_name(name).map_err(RunnerError::Usage)?;
    if let Some(user) = &args.user {
        check_user(user).map_err(RunnerError::Usage)?;
    }
    let systemctl = find_systemctl()?;
    let unit_path = unit_path(name);
    if unit_path.exists() {
        eprintln!(
            "error: {} already exists: run `runner uninstall{}` first",
            unit_path.display(),
            service_flag(name)
        );
        return Ok(exit::FAILED);
    }
    let exe = std::env::current_exe()
        .and_then(|exe| exe.canonicalize())
        .map_err(|e| RunnerError::Other(format!("cannot find the path of this program: {e}")))?;
    let config = resolve_config_path(args.config.config.as_deref());
    let working_directory = absolute(args.working_directory.as_deref())?;
    let unit = render_unit(&UnitSpec {
        name,
        exe: &exe,
        config: &config,
        working_directory: &working_directory,
        user: args.user.as_deref(),
    });
    write_atomic(&unit_path, unit.as_bytes(), 0o644).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!(" (run as root, or set {UNIT_DIR_ENV} to another directory)")
        } else {
            String::new()
        };
        RunnerError::Other(format!("cannot write {}: {e}{hint}", unit_path.display()))
    })?;
    let enabled = systemctl_ok(&systemctl, &["daemon-reload"])
        .and_then(|()| systemctl_ok(&systemctl, &["enable", name]));
    if let Err(err) = enabled {
        // Leave the system as it was, so installing again works.
        let _ = std::fs::remove_file(&unit_path);
        let _ = run_systemctl(&systemctl, &["daemon-reload"]);
        return Err(err);
    }
    if !config.exists() {
        eprintln!(
            "note: {} does not exist yet; `runner register` creates it",
            config.display()
        );
    }
    println!("Installed {}", unit_path.display());
    println!("Start it with `runner start{}`", service_flag(name));
    Ok(exit::OK)
}

/// `systemctl disable <name>`, removes the unit, `systemctl daemon-reload`.
/// A service that is not installed is a failure (exit 1).
pub fn uninstall(args: &ServiceArgs) -> Result<i32, RunnerError> {
    let name = args.service.as_str();
    check_service_name(name).map_err(RunnerError::Usage)?;
    let systemctl = find_systemctl()?;
    let unit_path = unit_path(name);
    if !unit_path.exists() {
        eprintln!(
            "error: {} does not exist: the service {name} is not installed",
            unit_path.display()
        );
        return Ok(exit::FAILED);
    }
    systemctl_ok(&systemctl, &["disable", name])?;
    std::fs::remove_file(&unit_path)
        .map_err(|e| RunnerError::Other(format!("cannot remove {}: {e}", unit_path.display())))?;
    systemctl_ok(&systemctl, &["daemon-reload"])?;
    println!("Removed {}", unit_path.display());
    Ok(exit::OK)
}

/// `systemctl <verb> <name>`, its output shown as it comes and its exit
/// status passed through (so `runner status` exits 3 for a stopped
/// service, as systemctl does).
pub fn control(verb: &str, args: &ServiceArgs) -> Result<i32, RunnerError> {
    let name = args.service.as_str();
    check_service_name(name).map_err(RunnerError::Usage)?;
    let systemctl = find_systemctl()?;
    let status = run_systemctl(&systemctl, &[verb, name])?;
    // Killed by a signal: no status of systemctl's own to pass on.
    Ok(status.code().unwrap_or(exit::RUNNER_FAILURE))
}

fn unit_path(name: &str) -> PathBuf {
    let dir = std::env::var_os(UNIT_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_UNIT_DIR), PathBuf::from);
    dir.join(format!("{name}.service"))
}

/// ` --service NAME` when the name is not the default, for hints.
fn service_flag(name: &str) -> String {
    if name == "runner" {
        String::new()
    } else {
        format!(" --service {name}")
    }
}

fn absolute(dir: Option<&Path>) -> Result<PathBuf, RunnerError> {
    let cwd = std::env::current_dir()
        .map_err(|e| RunnerError::Other(format!("cannot read the current directory: {e}")))?;
    Ok(match dir {
        Some(dir) => cwd.join(dir),
        None => cwd,
    })
}

fn find_systemctl() -> Result<PathBuf, RunnerError> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemctl"))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            RunnerError::Other(
                "systemctl not found in PATH: managing the service needs systemd".to_owned(),
            )
        })
}

fn run_systemctl(systemctl: &Path, args: &[&str]) -> Result<ExitStatus, RunnerError> {
    Command::new(systemctl)
        .args(args.iter().map(OsStr::new))
        .status()
        .map_err(|e| RunnerError::Other(format!("cannot run {}: {e}", systemctl.display())))
}

fn systemctl_ok(systemctl: &Path, args: &[&str]) -> Result<(), RunnerError> {
    let status = run_systemctl(systemctl, args)?;
    if status.success() {
        Ok(())
    } else {
        Err(RunnerError::Other(format!(
            "`systemctl {}` failed ({status})",
            args.join(" ")
        )))
    }
}
