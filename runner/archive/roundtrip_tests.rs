//! Whole-module tests: selection, writing and extraction together, on
//! arbitrary trees and on a job-sized tree whose timings are printed.
//!
//! For meaningful timings run in release mode:
//! `cargo test --release --lib archive::roundtrip_tests -- --nocapture`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use walkdir::WalkDir;

use super::test_support::{random_bytes, write_file};
use super::{CompressionLevel, ZipOptions, extract_zip, select_paths, write_zip};

#[derive(Clone, Debug)]
enum Node {
    File { bytes: Vec<u8>, exec: bool },
    Link(String),
    Dir,
}

/// What a tree holds, as compared after a round trip: per path its kind,
/// permission bits, and content or link target.
fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.expect("walk");
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = e.path().symlink_metadata().unwrap();
            let perm = meta.permissions().mode() & 0o777;
            let state = if meta.file_type().is_symlink() {
                let target = fs::read_link(e.path()).unwrap();
                ('l', 0, target.into_os_string().into_encoded_bytes())
            } else if meta.is_dir() {
                ('d', perm, Vec::new())
            } else {
                ('f', perm, fs::read(e.path()).unwrap())
            };
            (rel, state)
        })
        .collect()
}

fn node() -> impl Strategy<Value = Node> {
    let text = prop::collection::vec(prop::sample::select(b"ab \n".to_vec()), 0..6000);
    let noise = prop::collection::vec(any::<u8>(), 0..3000);
    prop_oneof![
        (prop_oneof![text, noise], any::<bool>())
            .prop_map(|(bytes, exec)| Node::File { bytes, exec }),
        "[a-z./]{1,12}".prop_map(Node::Link),
        Just(Node::Dir),
    ]
}

/// Up to a dozen paths of one to three short components; a path below a
/// file or link, or given twice, is dropped.
fn tree() -> impl Strategy<Value = BTreeMap<String, Node>> {
    prop::collection::vec((prop::collection::vec("[ab é]{1,2}", 1..4), node()), 0..12).prop_map(
        |items| {
            let mut tree: BTreeMap<String, Node> = BTreeMap::new();
            for (parts, node) in items {
                let path = parts.join("/");
                let blocked = (1..parts.len()).any(|n| {
                    matches!(
                        tree.get(&parts[..n].join("/")),
                        Some(Node::File { .. } | Node::Link(_))
                    )
                });
                let is_parent = tree.keys().any(|k| k.starts_with(&format!("{path}/")));
                if blocked || tree.contains_key(&path) || (is_parent && !matches!(node, Node::Dir))
                {
                    continue;
                }
                tree.insert(path, node);
            }
            tree
        },
    )
}

fn build(root: &Path, tree: &BTreeMap<String, Node>) {
    for (path, node) in tree {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        match node {
            Node::File { bytes, exec } => {
                write_file(root, path, bytes, if *exec { 0o755 } else { 0o644 })
            }
            Node::Link(target) => symlink(target, &full).unwrap(),
            Node::Dir => fs::create_dir_all(&full).unwrap(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn zip_write_then_extract_reproduces_any_tree(tree in tree(), level in 0..5usize) {
        let project = tempfile::tempdir().unwrap();
        build(project.path(), &tree);
        let selection = select_paths(project.path(), &[".".into()], &[], false).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let archive = scratch.path().join("a.zip");
        let level = ["fastest", "fast", "default", "slow", "slowest"][level].parse().unwrap();
        write_zip(project.path(), &selection.entries, &archive, &ZipOptions { level, threads: 2 }).unwrap();
        let target = scratch.path().join("out");
        extract_zip(&archive, &target).unwrap();
        prop_assert_eq!(snapshot(&target), snapshot(project.path()));
    }
}

/// A tree like a build's output: `files` files totalling about `total`
/// bytes, half of them text (words of a 2000-word vocabulary drawn with a
/// skewed frequency, as in prose or code), half incompressible.
fn job_tree(root: &Path, files: usize, total: usize) {
    let mut x: u64 = 88_172_645_463_325_252;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let vocabulary: Vec<String> = (0..2000)
        .map(|_| {
            let r = next();
            (0..2 + r % 9)
                .map(|i| char::from(b'a' + ((r >> (i * 5)) % 26) as u8))
                .collect()
        })
        .collect();
    let separators = [" ", " ", " ", ", ", ".\n", "(", ")", " = ", ";\n    "];
    let each = total / files;
    for i in 0..files {
        let bytes = if i % 2 == 0 {
            random_bytes(each, i as u64)
        } else {
            let mut text = String::with_capacity(each + 32);
            while text.len() < each {
                let r = next();
                let skew = (r >> 11) as f64 / (1u64 << 53) as f64;
                text.push_str(&vocabulary[(skew.powi(3) * 2000.0) as usize % 2000]);
                text.push_str(separators[(r % 9) as usize]);
            }
            text.truncate(each);
            text.into_bytes()
        };
        write_file(
            root,
            &format!("target/dir{}/file{i}.out", i % 40),
            &bytes,
            0o644,
        );
    }
}

/// CPU time used so far by this process, all threads (Linux `/proc`, in
/// clock ticks of 10 ms); `None` where unavailable.
fn cpu_ms() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

#[test]
fn job_sized_round_trip_prints_its_timings() {
    // Full size in release builds; a tenth in debug builds, where the
    // figures mean little but the round trip is still checked.
    let (files, total) = if cfg!(debug_assertions) {
        (200, 10 << 20)
    } else {
        (2000, 100 << 20)
    };
    let project = tempfile::tempdir().unwrap();
    job_tree(project.path(), files, total);
    for level in [CompressionLevel::Default, CompressionLevel::Fastest] {
        let scratch = tempfile::tempdir().unwrap();
        let archive = scratch.path().join("artifacts.zip");
        let cpu_start = cpu_ms();
        let start = Instant::now();
        let selection = select_paths(project.path(), &["target/".into()], &[], false).unwrap();
        let selected = start.elapsed();
        let options = ZipOptions { level, threads: 0 };
        let summary = write_zip(project.path(), &selection.entries, &archive, &options).unwrap();
        let written = start.elapsed() - selected;
        let cpu_written = cpu_ms();
        let target = scratch.path().join("out");
        let extracted_at = Instant::now();
        let extracted = extract_zip(&archive, &target).unwrap();
        let extract = extracted_at.elapsed();
        let cpu_end = cpu_ms();
        let cpu = |from: Option<u64>, to: Option<u64>| match (from, to) {
            (Some(a), Some(b)) => format!("{} ms", b - a),
            _ => "?".to_owned(),
        };
        let size = fs::metadata(&archive).unwrap().len();
        println!(
            "{level}: {} files, {:.1} MiB -> {:.1} MiB zip; wall: select {:.0} ms, write {:.0} ms, extract {:.0} ms, total {:.0} ms; cpu: select+write {}, extract {}",
            extracted.files,
            summary.bytes as f64 / 1048576.0,
            size as f64 / 1048576.0,
            selected.as_secs_f64() * 1e3,
            written.as_secs_f64() * 1e3,
            extract.as_secs_f64() * 1e3,
            (selected + written + extract).as_secs_f64() * 1e3,
            cpu(cpu_start, cpu_written),
            cpu(cpu_written, cpu_end),
        );
        assert_eq!(extracted.files, files);
        assert_eq!(extracted.bytes, summary.bytes);
        for i in [0, 1, files - 1] {
            let rel = format!("target/dir{}/file{i}.out", i % 40);
            assert_eq!(
                fs::read(target.join(&rel)).unwrap(),
                fs::read(project.path().join(&rel)).unwrap()
            );
        }
    }
}
