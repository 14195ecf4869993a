//! Helpers shared by the archive tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `len` bytes that do not compress (xorshift64), different per `seed`.
pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `bytes` to `root/rel` with permission bits `mode`, creating
/// parent directories.
pub(crate) fn write_file(root: &Path, rel: &str, bytes: &[u8], mode: u32) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, bytes).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The permission bits of `path` (not following a link).
pub(crate) fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("lstat")
        .permissions()
        .mode()
        & 0o7777
}
