//! Where `config.toml` is, and the system id kept beside it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::atomic;
use super::load::ConfigError;

/// The configuration of an agent running as root.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/runner/config.toml";

/// The environment variable naming the configuration file, below
/// `--config` and above the default.
pub const CONFIG_ENV: &str = "RUNNER_CONFIG";

/// The file beside `config.toml` that keeps this host's system id.
pub const SYSTEM_ID_FILE: &str = ".runner_system_id";

/// `/etc/runner/config.toml` as root, `~/.runner/config.toml` otherwise
/// (`config.toml` in the current directory when there is no home).
pub fn default_config_path() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from(SYSTEM_CONFIG_PATH);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Path::new(&home).join(".runner").join("config.toml"),
        None => PathBuf::from("config.toml"),
    }
}

/// The configuration file to use: `explicit` (from `--config`), else
/// `$RUNNER_CONFIG`, else [`default_config_path`]; made absolute, so a
/// service or a message names it unambiguously.
pub fn resolve_config_path(explicit: Option<&Path>) -> PathBuf {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => match std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => default_config_path(),
        },
    };
    if path.is_absolute() {
        return path;
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path,
    }
}

/// The files the OS keeps its machine id in. systemd makes the second a
/// link to the first; older systems have only the dbus one.
const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// This host's system id, which tells GitLab apart the hosts that share
/// one runner token: read from `.runner_system_id` beside `config_path`
/// when it holds a valid one, otherwise made (`s_` + 12 hex digits derived
/// from the machine id, or `r_` + 12 random characters without one) and
/// written there.
pub fn system_id(config_path: &Path) -> Result<String, ConfigError> {
    let files: Vec<&Path> = MACHINE_ID_FILES.iter().map(Path::new).collect();
    system_id_with(config_path, &files)
}

pub(super) fn system_id_with(
    config_path: &Path,
    machine_id_files: &[&Path],
) -> Result<String, ConfigError> {
    let id_path = atomic::parent_dir(config_path).join(SYSTEM_ID_FILE);
    match std::fs::read_to_string(&id_path) {
        Ok(text) if is_valid_system_id(text.trim()) => return Ok(text.trim().to_owned()),
        // Missing, empty or damaged: make a new one.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ConfigError::Read {
                path: id_path,
                source,
            });
        }
    }
    let id = match machine_id(machine_id_files) {
        Some(machine_id) => from_machine_id(&machine_id),
        None => random_id().map_err(|source| ConfigError::Read {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?,
    };
    let write = |source| ConfigError::Write {
        path: id_path.clone(),
        source,
    };
    atomic::create_private_dir(atomic::parent_dir(&id_path)).map_err(write)?;
    atomic::write_atomic(&id_path, id.as_bytes(), 0o600).map_err(write)?;
    Ok(id)
}

/// gitlab-runner writes `s_`/`r_` and 12 characters; GitLab takes up to
/// 64, so a longer id of the same form is kept too.
fn is_valid_system_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("s_").or_else(|| id.strip_prefix("r_")) else {
        return false;
    };
    id.len() <= 64 && rest.len() >= 12 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn machine_id(files: &[&Path]) -> Option<String> {
    files.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_owned())
    })
}

/// gitlab-runner's derivation, so a host keeps its id when it moves from
/// gitlab-runner to this runner: HMAC-SHA256 keyed with the machine id over
/// "gitlab-runner", first 12 hex digits. The machine id itself stays
/// private.
fn from_machine_id(machine_id: &str) -> String {
    let mac = hmac_sha256(machine_id.as_bytes(), b"gitlab-runner");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("s_{}", &hex[..12])
}

/// HMAC (RFC 2104) over the `sha2` crate the workspace already builds; the
/// construction is a dozen lines, not worth another dependency.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `r_` and 12 characters of `[A-Za-z0-9]` from the OS's random source.
fn random_id() -> std::io::Result<String> {
    const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    let mut id = String::from("r_");
    let mut buf = [0u8; 32];
    while id.len() < 14 {
        urandom.read_exact(&mut buf)?;
        // 248 = 4 × 62: dropping bytes above it keeps every character
        // equally likely.
        for b in buf.iter().filter(|&&b| b < 248) {
            if id.len() < 14 {
                id.push(CHARSET[usize::from(*b) % CHARSET.len()] as char);
            }
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (test case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(mac[..4], [0x60, 0xe4, 0x31, 0x59]);
    }

    #[test]
    fn with_a_machine_id_the_system_id_is_derived_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let machine_id = dir.path().join("machine-id");
        std::fs::write(&machine_id, "3d1219c7c4c5404aaa1f6d2a48adfda4\n").unwrap();
        let config = dir.path().join("etc/config.toml");
        let first = system_id_with(&config, &[&machine_id]).unwrap();
        let pattern = regex::Regex::new("^s_[0-9a-f]{12}$").unwrap();
        assert!(pattern.is_match(&first), "{first}");
        assert_eq!(first, from_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4"));
        let stored = dir.path().join("etc").join(SYSTEM_ID_FILE);
        assert_eq!(std::fs::read_to_string(&stored).unwrap(), first);
        // Read back, even once the machine id changes.
        std::fs::write(&machine_id, "0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(system_id_with(&config, &[&machine_id]).unwrap(), first);
    }

    #[test]
    fn without_a_machine_id_the_system_id_is_random_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-machine-id");
        let empty = dir.path().join("empty-machine-id");
        std::fs::write(&empty, "\n").unwrap();
        let config = dir.path().join("config.toml");
        let first = system_id_with(&config, &[&missing, &empty]).unwrap();
        let pattern = regex::Regex::new("^r_[A-Za-z0-9]{12}$").unwrap();
        assert!(pattern.is_match(&first), "{first}");
        assert_eq!(system_id_with(&config, &[&missing]).unwrap(), first);
        // Another host (another directory) gets another id.
        let other = tempfile::tempdir().unwrap();
        let second = system_id_with(&other.path().join("config.toml"), &[&missing]).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn a_damaged_system_id_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let machine_id = dir.path().join("machine-id");
        std::fs::write(&machine_id, "abc").unwrap();
        let config = dir.path().join("config.toml");
        let stored = dir.path().join(SYSTEM_ID_FILE);
        for bad in [
            "",
            "x_123456789012",
            "s_short",
            &format!("s_{}", "a".repeat(63)),
        ] {
            std::fs::write(&stored, bad).unwrap();
            assert_eq!(
                system_id_with(&config, &[&machine_id]).unwrap(),
                from_machine_id("abc")
            );
        }
        // One written by gitlab-runner, with a newline, is kept.
        std::fs::write(&stored, "r_AbCdEf123456\n").unwrap();
        assert_eq!(
            system_id_with(&config, &[&machine_id]).unwrap(),
            "r_AbCdEf123456"
        );
    }

    #[test]
    fn the_config_path_comes_from_the_flag_then_the_default() {
        assert_eq!(
            resolve_config_path(Some(Path::new("/srv/runner.toml"))),
            Path::new("/srv/runner.toml")
        );
        let relative = resolve_config_path(Some(Path::new("conf/config.toml")));
        assert_eq!(
            relative,
            std::env::current_dir().unwrap().join("conf/config.toml")
        );
        let default = default_config_path();
        if rustix::process::geteuid().is_root() {
            assert_eq!(default, Path::new(SYSTEM_CONFIG_PATH));
        } else {
            assert!(default.ends_with(".runner/config.toml"), "{default:?}");
        }
    }
}
