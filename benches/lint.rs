//! How long linting takes: the largest corpus pipeline (gitlab-runner, with
//! its 18 local includes) and the whole corpus, in-process and as a whole
//! `runner lint` process. Prints figures; asserts nothing about time.
//!
//! Run with `cargo bench --bench lint`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use runner::ci::load::{LoadOptions, load};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/real")
}

fn options(project: &Path, file: &str, cache: &Path) -> LoadOptions {
    let mut opts = LoadOptions::new(project.to_path_buf(), PathBuf::from(file));
    opts.offline = true;
    opts.cache_dir = cache.to_path_buf();
    opts
}

/// Runs `f` `n` times and returns (min, median).
fn measure(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[n / 2])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let cache = std::env::temp_dir().join("runner-bench-cache");
    let gitlab_runner = corpus().join("gitlabhq__gitlab-runner");

    let (min, median) = measure(50, || {
        let loaded = load(&options(&gitlab_runner, ".gitlab-ci.yml", &cache));
        assert!(loaded.is_ok(), "gitlab-runner's pipeline must lint valid");
    });
    println!(
        "lint gitlab-runner pipeline (in-process, 50 runs): min {} median {}",
        ms(min),
        ms(median)
    );

    let binary = env!("CARGO_BIN_EXE_runner");
    let (min, median) = measure(20, || {
        let status = Command::new(binary)
            .args(["lint", "--offline", "--project-dir"])
            .arg(&gitlab_runner)
            .env("RUNNER_CACHE_DIR", &cache)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("runner runs");
        assert!(status.success());
    });
    println!(
        "`runner lint` gitlab-runner pipeline (whole process, 20 runs): min {} median {}",
        ms(min),
        ms(median)
    );

    let mut files = Vec::new();
    for project in std::fs::read_dir(corpus()).expect("corpus") {
        let project = project.unwrap().path();
        for entry in walkdir::WalkDir::new(&project).into_iter().flatten() {
            let is_yaml = entry
                .path()
                .extension()
                .is_some_and(|e| e == "yml" || e == "yaml");
            if entry.file_type().is_file() && is_yaml {
                let rel = entry
                    .path()
                    .strip_prefix(&project)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((project.clone(), rel));
            }
        }
    }
    let (min, median) = measure(10, || {
        for (project, rel) in &files {
            let _ = load(&options(project, rel, &cache));
        }
    });
    println!(
        "lint whole corpus, {} files (in-process, 10 runs): min {} median {}",
        files.len(),
        ms(min),
        ms(median)
    );
}
