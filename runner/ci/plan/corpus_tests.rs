//! Planning every real configuration of the corpus that stands on its own
//! (no `include` needed to compose and decode it), for several kinds of
//! pipeline: nothing may panic, every created job must be consistent, and
//! large pipelines must plan fast.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::seed::plan;
use super::testutil::ctx;
use super::workflow::FILTERED_OUT;
use crate::ci::compose::{apply_defaults, resolve_extends, resolve_references};
use crate::ci::include::{IncludeContext, load_config};
use crate::ci::model::pipeline::{Pipeline, decode_pipeline};
use crate::ci::source::{SourceId, Sources};
use crate::ci::test_corpus;
use crate::ci::variables::VarSource;
use crate::ci::yaml::{Node, parse_documents};

/// The file composed and decoded, its `include` dropped; `None` when it
/// needs other files to make sense.
fn decoded(path: &Path) -> Option<Pipeline> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut root: Node = parse_documents(&text, SourceId(1)).ok()?.pop()?;
    root.as_map_mut()?.remove("include");
    composed(root)
}

/// A repository's `.gitlab-ci.yml` with its local includes, offline.
fn decoded_with_includes(repo: &Path, cache: &Path) -> Option<Pipeline> {
    let root_file = repo.join(".gitlab-ci.yml");
    let text = std::fs::read_to_string(&root_file).ok()?;
    let mut sources = Sources::new();
    let id = sources.add(".gitlab-ci.yml", text);
    let mut include_ctx = IncludeContext::new(repo, "https://gitlab.com", cache);
    include_ctx.offline = true;
    let root = load_config(id, &mut sources, &include_ctx).ok()?;
    composed(root)
}

fn composed(mut root: Node) -> Option<Pipeline> {
    resolve_extends(&mut root).ok()?;
    resolve_references(&mut root).ok()?;
    apply_defaults(&mut root).ok()?;
    decode_pipeline(&root).ok()
}

#[test]
fn corpus_pipelines_plan_without_panics_and_consistently() {
    let files = test_corpus::yaml_files(&test_corpus::dir());
    assert!(!files.is_empty(), "the corpus holds no YAML file");
    let contexts = [
        ctx("push", &[]),
        ctx("merge_request_event", &[]),
        ctx("push", &[("CI_COMMIT_TAG", "v1.0.0")]),
        ctx("schedule", &[]),
    ];
    let cache = tempfile::tempdir().expect("temp dir");
    let mut repos: Vec<PathBuf> = std::fs::read_dir(test_corpus::dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(".gitlab-ci.yml").is_file())
        .collect();
    repos.sort();
    let pipelines = files
        .iter()
        .filter_map(|f| decoded(f).map(|p| (f.clone(), p)))
        .chain(
            repos
                .iter()
                .filter_map(|r| decoded_with_includes(r, cache.path()).map(|p| (r.clone(), p))),
        );
    let mut planned = 0;
    let mut slowest = (Duration::ZERO, String::new(), 0);
    for (path, pipeline) in pipelines {
        planned += 1;
        for ctx in &contexts {
            let started = Instant::now();
            let result = plan(&pipeline, ctx);
            let took = started.elapsed();
            if took > slowest.0 {
                slowest = (took, path.display().to_string(), pipeline.jobs.len());
            }
            let Ok(plan) = result else {
                // Needs left out by rules are real GitLab errors.
                continue;
            };
            let total = plan.jobs.len() + plan.skipped.len();
            if plan.reason.as_deref() == Some(FILTERED_OUT) {
                assert_eq!(total, 0, "{}", path.display());
            } else {
                assert!(
                    total >= pipeline.jobs.len(),
                    "{}: jobs lost",
                    path.display()
                );
            }
            for job in &plan.jobs {
                assert!(
                    plan.stages.iter().any(|s| s.jobs.contains(&job.name)),
                    "{}: {} has no stage",
                    path.display(),
                    job.name
                );
                for need in job.needs.iter().flatten() {
                    assert!(
                        plan.job(&need.job).is_some(),
                        "{}: dangling need",
                        path.display()
                    );
                }
            }
            serde_json::to_string(&plan).expect("plans serialize");
        }
    }
    assert!(
        planned >= 40,
        "only {planned} corpus files could be planned"
    );
    println!(
        "planned {planned} corpus files; slowest {:?} for {} ({} jobs)",
        slowest.0, slowest.1, slowest.2
    );
}

/// A pipeline the size of the largest real ones: 500 jobs over 5 stages,
/// each with rules, variables, an image, tags and a need.
fn large_pipeline() -> String {
    let mut yaml = String::from(
        "stages: [s0, s1, s2, s3, s4]\nvariables:\n  REGISTRY: registry.example.com\n  IMAGE: $REGISTRY/app\n",
    );
    for i in 0..500 {
        let stage = i / 100;
        yaml.push_str(&format!(
            "job{i}:\n  stage: s{stage}\n  image: $IMAGE:$CI_COMMIT_REF_SLUG\n  tags: [docker]\n  script: make {i}\n  variables:\n    N: \"{i}\"\n    TARGET: $IMAGE-$N\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n      when: never\n    - if: $CI_COMMIT_BRANCH == \"main\" && $N =~ /^[0-9]+$/\n"
        ));
        if stage > 0 {
            yaml.push_str(&format!("  needs: [job{}]\n", i - 100));
        }
    }
    yaml
}

#[test]
fn a_500_job_pipeline_plans_in_milliseconds() {
    let pipeline = super::testutil::pipeline(&large_pipeline());
    // About as many predefined variables as a real pipeline has.
    let mut ctx = ctx("push", &[]);
    for i in 0..100 {
        ctx.variables.set(
            format!("CI_PREDEFINED_{i}"),
            format!("value {i} with $CI_COMMIT_SHA"),
            VarSource::Predefined,
        );
    }
    ctx.variables
        .set("CI_COMMIT_REF_SLUG", "main", VarSource::Predefined);
    // The first run pays for page faults and lazily built statics; the
    // fastest of the next runs is the least disturbed by other processes.
    plan(&pipeline, &ctx).expect("plans");
    let mut fastest = Duration::MAX;
    for _ in 0..10 {
        let started = Instant::now();
        let plan = plan(&pipeline, &ctx).expect("plans");
        fastest = fastest.min(started.elapsed());
        assert_eq!(plan.jobs.len(), 500);
    }
    println!("500 jobs: {fastest:?} per plan");
    // Generous enough for an unoptimized build on a busy machine; the
    // optimized build is far below it.
    assert!(fastest < Duration::from_millis(if cfg!(debug_assertions) { 1500 } else { 50 }));
}
