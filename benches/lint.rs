//! How long linting takes: the largest corpus pipeline (gitlab-runner, with
//! its 18 local includes) and the whole corpus, in-process and as a whole
//! `runner lint` process. Prints figures; asserts nothing about time.
//!
//! Run with `cargo bench --bench lint`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use runner::ci::include::{FetchError, Fetcher, GitBlob};
use runner::ci::load::{LoadError, LoadOptions, load, load_with};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/real")
}

fn options(project: &Path, file: &str, cache: &Path) -> LoadOptions {
    let mut opts = LoadOptions::new(project.to_path_buf(), PathBuf::from(file));
    opts.offline = true;
    opts.cache_dir = cache.to_path_buf();
    opts
}

/// Serves gitlab-runner's four includes from other projects (a project
/// file, two components and a template) from memory, as a warm include
/// cache would, so the figure is the runner's own work and no network.
struct StandIns;

impl StandIns {
    fn text(location: &str) -> String {
        if location.contains("gcp_auth") {
            ".google-oidc:auth:\n  id_tokens: {GCP_ID_TOKEN: {aud: x}}\n  before_script: [gcloud auth]\n".into()
        } else if location.contains("dependency-scanning") {
            "dependency-scanning:\n  script: [scan]\n".into()
        } else if location.contains("sast") {
            "spec:\n  inputs:\n    run_advanced_sast: {type: boolean, default: false}\n---\n\
             gitlab-advanced-sast:\n  script: [sast]\n  allow_failure: $[[ inputs.run_advanced_sast ]]\n"
                .into()
        } else {
            ".fuzz_base:\n  stage: fuzz\n  script: [fuzz]\n".into()
        }
    }
}

impl Fetcher for StandIns {
    fn get(&self, url: &str, _: Duration) -> Result<String, FetchError> {
        Ok(StandIns::text(url))
    }
    fn git_file(
        &self,
        repo: &str,
        _: &str,
        path: &str,
        _: Duration,
    ) -> Result<Option<GitBlob>, FetchError> {
        let text = StandIns::text(&format!("{repo}/{path}"));
        Ok(Some(GitBlob {
            text,
            commit: "0".repeat(40),
        }))
    }
    fn git_files(&self, _: &str, _: &str, _: Duration) -> Result<Vec<String>, FetchError> {
        Ok(Vec::new())
    }
    fn git_tags(&self, _: &str, _: Duration) -> Result<Vec<String>, FetchError> {
        Ok(vec!["1.1.1".into(), "3.4.0".into()])
    }
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

    let lint_gitlab_runner = || {
        let mut opts = options(&gitlab_runner, ".gitlab-ci.yml", &cache);
        opts.offline = false;
        match load_with(&opts, |ctx| ctx.fetcher = Box::new(StandIns)) {
            Ok(loaded) => loaded,
            Err(LoadError::Invalid(f)) => {
                let text: Vec<String> =
                    f.diagnostics.iter().map(|d| d.render(&f.sources)).collect();
                panic!(
                    "gitlab-runner's pipeline must lint valid:\n{}",
                    text.join("\n")
                )
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    let loaded = lint_gitlab_runner();
    let (min, median) = measure(50, || {
        lint_gitlab_runner();
    });
    println!(
        "lint gitlab-runner pipeline, {} files, {} jobs (in-process, 50 runs): min {} median {}",
        loaded.sources.names().len(),
        loaded.pipeline.jobs.len(),
        ms(min),
        ms(median)
    );

    // The whole process, on the example project (local includes only).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let binary = env!("CARGO_BIN_EXE_runner");
    let (min, median) = measure(20, || {
        let status = Command::new(binary)
            .args(["lint", "--offline", "--project-dir"])
            .arg(&example)
            .env("RUNNER_CACHE_DIR", &cache)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("runner runs");
        assert!(status.success());
    });
    println!(
        "`runner lint` examples/hello (whole process, 20 runs): min {} median {}",
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
        "lint whole corpus, {} files (in-process, offline, 10 runs): min {} median {}",
        files.len(),
        ms(min),
        ms(median)
    );
}
