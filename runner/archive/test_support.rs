//! Helpers shared by the archive tests.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zip::ZipWriter;
use zip::write::SimpleFileOptions;

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

/// How a crafted archive entry is written.
pub(crate) enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
    /// A file entry with these external attributes.
    Attr(&'a str, u32),
}

/// An archive written directly with the zip library, so that it can
/// hold what our writer never produces.
pub(crate) fn craft(dir: &Path, entries: &[Raw]) -> PathBuf {
    let path = dir.join("crafted.zip");
    let mut zip = ZipWriter::new(File::create(&path).unwrap());
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for entry in entries {
        match entry {
            Raw::File(name, bytes) => {
                zip.start_file(*name, options.unix_permissions(0o644))
                    .unwrap();
                zip.write_all(bytes).unwrap();
            }
            Raw::Dir(name) => zip.add_directory(*name, options).unwrap(),
            Raw::Link(name, target) => zip.add_symlink(*name, *target, options).unwrap(),
            Raw::Attr(name, attr) => {
                zip.start_file(*name, options.external_attributes(*attr))
                    .unwrap();
                zip.write_all(b"x").unwrap();
            }
        }
    }
    zip.finish().unwrap();
    path
}

pub(crate) fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}
