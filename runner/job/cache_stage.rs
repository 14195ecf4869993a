//! The `restore_cache` and `archive_cache` stages with a local cache, as
//! gitlab-runner runs them: for each of the job's caches, the key is
//! expanded and sanitised, the policy decides whether to pull or push,
//! `when` decides whether to save after this job's result, and the archive
//! lives at `<cache dir>/<project path>/<key>/cache.zip`.
//!
//! A cache is an optimisation, so nothing here fails the job: every problem
//! (a missing or corrupt archive, a full disk, an invalid key or policy)
//! becomes a warning in the job log and the job goes on, as on GitLab.

use std::fs;
use std::io;
use std::path::Path;

use crate::archive::{
    ArchiveError, CompressionLevel, SelectNote, ZipOptions, archive_is_current, cache_path,
    extract_zip, is_protected_fallback_key, sanitize_cache_key, select_paths, validate_cache_key,
    write_zip,
};
use crate::trace::ansi;

use super::log::JobLog;
use super::payload::{CacheSpec, JobPayload};
use super::vars::JobVars;

/// Where the caches of one job live and what names them.
#[derive(Clone, Copy, Debug)]
pub struct CacheContext<'a> {
    /// The runner's cache directory (`cache_dir` in config.toml).
    pub cache_dir: &'a Path,
    /// The project's full path, e.g. `group/project`: caches are per project.
    pub project_path: &'a str,
    /// The job's working copy (CI_PROJECT_DIR), which caches restore into.
    pub project_dir: &'a Path,
    /// The job's name and git ref make the key of a cache without one.
    pub job_name: &'a str,
    pub git_ref: &'a str,
}

/// gitlab-runner's cache-extractor line when no shared cache is configured.
const LOCAL_RESTORE: &str = "No URL provided, cache will not be downloaded from shared cache server. Instead a local version of cache will be extracted.";
/// gitlab-runner's cache-archiver line when no shared cache is configured.
const LOCAL_SAVE: &str = "No URL provided, cache will not be uploaded to shared cache server. Cache will be stored only locally.";

/// `cache:policy`, after variable expansion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    PullPush,
    Pull,
    Push,
}

impl Policy {
    fn parse(policy: &str) -> Option<Policy> {
        match policy {
            "" | "pull-push" => Some(Policy::PullPush),
            "pull" => Some(Policy::Pull),
            "push" => Some(Policy::Push),
            _ => None,
        }
    }
}

/// Restores the job's caches into the project directory: for each cache
/// the main key, then each of `fallback_keys`, then `CACHE_FALLBACK_KEY`,
/// until one archive extracts.
pub fn restore_caches(payload: &JobPayload, vars: &JobVars, ctx: &CacheContext, log: &mut JobLog) {
    for cache in &payload.cache {
        if !selects_anything(cache) || !key_is_valid(cache, ctx, log) {
            continue;
        }
        let Some(key) = resolve_key(&cache.key, vars, ctx, log) else {
            log.notice("Skipping cache extraction due to empty cache key");
            continue;
        };
        let Some(policy) = policy(cache, vars, &key, log) else {
            continue;
        };
        if policy == Policy::Push {
            log.notice(&format!("Not downloading cache {key} due to policy"));
            continue;
        }
        let mut keys = vec![key];
        for fallback in &cache.fallback_keys {
            add_fallback(&vars.expand(fallback), vars, ctx, log, &mut keys);
        }
        if let Some(fallback) = vars.get("CACHE_FALLBACK_KEY") {
            // `-protected` caches belong to protected refs; a variable any
            // branch can set must not reach them.
            if is_protected_fallback_key(&fallback) {
                log.warning(&format!(
                    "CACHE_FALLBACK_KEY {fallback:?} not allowed to end in \"-protected\""
                ));
            } else {
                add_fallback(&fallback, vars, ctx, log, &mut keys);
            }
        }
        for key in &keys {
            if extract(key, ctx, log) {
                break;
            }
        }
    }
}

/// Saves the caches whose `when` matches the job's result and whose policy
/// pushes. An archive newer than every selected file is left as it is.
pub fn save_caches(
    payload: &JobPayload,
    vars: &JobVars,
    ctx: &CacheContext,
    job_succeeded: bool,
    log: &mut JobLog,
) {
    for cache in &payload.cache {
        if !when_matches(&cache.when, job_succeeded)
            || !selects_anything(cache)
            || !key_is_valid(cache, ctx, log)
        {
            continue;
        }
        let Some(key) = resolve_key(&cache.key, vars, ctx, log) else {
            log.notice("Skipping cache archiving due to empty cache key");
            continue;
        };
        let Some(policy) = policy(cache, vars, &key, log) else {
            continue;
        };
        if policy == Policy::Pull {
            log.notice(&format!("Not uploading cache {key} due to policy"));
            continue;
        }
        log.notice(&format!("Creating cache {key}..."));
        match archive(cache, vars, ctx, &key, log) {
            Ok(()) => log.notice("Created cache"),
            Err(e) => {
                log.warning(&e.to_string());
                failure_line(log, "Failed to create cache");
            }
        }
    }
}

/// gitlab-runner skips a cache that names neither paths nor untracked files.
fn selects_anything(cache: &CacheSpec) -> bool {
    !cache.paths.is_empty() || cache.untracked
}

/// `cache:when` or `artifacts:when` (same values, same meaning) against
/// the job's result; an unknown value never matches.
pub(super) fn when_matches(when: &str, job_succeeded: bool) -> bool {
    match when {
        "" | "on_success" => job_succeeded,
        "on_failure" => !job_succeeded,
        "always" => true,
        _ => false,
    }
}

/// GitLab refuses a `cache:key` with `/` (or that is `.`/`..`) when it reads
/// the YAML; a payload built locally has not been through that check.
fn key_is_valid(cache: &CacheSpec, ctx: &CacheContext, log: &mut JobLog) -> bool {
    let location = format!("jobs:{}:cache:key", ctx.job_name);
    match validate_cache_key(&location, &cache.key) {
        Ok(()) => true,
        Err(e) => {
            log.warning(&e.to_string());
            false
        }
    }
}

/// The key as the runner uses it: `$`-expanded, `<job name>/<ref>` when
/// none is given, sanitised into a relative path. `None` when nothing
/// usable is left.
fn resolve_key(raw: &str, vars: &JobVars, ctx: &CacheContext, log: &mut JobLog) -> Option<String> {
    let expanded = if raw.is_empty() {
        clean_join(&[ctx.job_name, ctx.git_ref])
    } else {
        vars.expand(raw)
    };
    match sanitize_cache_key(&expanded) {
        Ok(key) => {
            if key != expanded {
                log.warning(&format!("cache key {expanded:?} sanitized to {key:?}"));
            }
            (!key.is_empty()).then_some(key)
        }
        Err(e) => {
            log.warning(&e.to_string());
            None
        }
    }
}

/// Go's `path.Join("/", parts...)[1:]`: the parts joined with `/`, `.`
/// and `..` resolved without climbing above the start.
fn clean_join(parts: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in parts.iter().flat_map(|p| p.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            part => out.push(part),
        }
    }
    out.join("/")
}

fn add_fallback(
    raw: &str,
    vars: &JobVars,
    ctx: &CacheContext,
    log: &mut JobLog,
    keys: &mut Vec<String>,
) {
    if raw.is_empty() {
        return;
    }
    match resolve_key(raw, vars, ctx, log) {
        Some(key) => keys.push(key),
        None => log.notice("Skipping cache extraction due to empty cache key"),
    }
}

/// The cache's policy, which may be a variable. An unknown policy skips
/// the cache with a warning (gitlab-runner fails the stage; a cache never
/// fails a job here).
fn policy(cache: &CacheSpec, vars: &JobVars, key: &str, log: &mut JobLog) -> Option<Policy> {
    let expanded = vars.expand(&cache.policy);
    let policy = Policy::parse(&expanded);
    if policy.is_none() {
        log.warning(&format!("unknown cache policy {expanded} for {key}"));
    }
    policy
}

/// Extracts the archive of `key`; whether it worked.
fn extract(key: &str, ctx: &CacheContext, log: &mut JobLog) -> bool {
    log.notice(&format!("Checking cache for {key}..."));
    log.info(LOCAL_RESTORE);
    let archive = cache_path(ctx.cache_dir, ctx.project_path, key);
    let outcome = match fs::metadata(&archive) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err("Cache file does not exist".into()),
        _ => extract_zip(&archive, ctx.project_dir).map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(summary) => {
            for warning in &summary.warnings {
                log.warning(warning);
            }
            log.notice("Successfully extracted cache");
            true
        }
        Err(message) => {
            log.warning(&message);
            failure_line(log, "Failed to extract cache");
            false
        }
    }
}

/// Writes the archive of one cache unless it is up to date.
fn archive(
    cache: &CacheSpec,
    vars: &JobVars,
    ctx: &CacheContext,
    key: &str,
    log: &mut JobLog,
) -> Result<(), ArchiveError> {
    let paths: Vec<String> = cache.paths.iter().map(|p| vars.expand(p)).collect();
    let selection = select_paths(ctx.project_dir, &paths, &[], cache.untracked)?;
    log_select_notes(&selection.notes, log);
    let dest = cache_path(ctx.cache_dir, ctx.project_path, key);
    // Something other than a file in the archive's place is no archive.
    if dest.is_file() && archive_is_current(ctx.project_dir, &selection.entries, &dest) {
        log.info("Archive is up to date!");
        return Ok(());
    }
    let options = ZipOptions {
        level: compression_level(vars, "CACHE_COMPRESSION_LEVEL", log),
        threads: 0,
    };
    let summary = write_zip(ctx.project_dir, &selection.entries, &dest, &options)?;
    for warning in &summary.warnings {
        log.warning(warning);
    }
    log.info(LOCAL_SAVE);
    Ok(())
}

/// Prints what path selection found, warnings as warnings.
pub(super) fn log_select_notes(notes: &[SelectNote], log: &mut JobLog) {
    for note in notes {
        if note.is_warning() {
            log.warning(&note.to_string());
        } else {
            log.info(&note.to_string());
        }
    }
}

/// The level named by `variable` (`ARTIFACT_COMPRESSION_LEVEL`,
/// `CACHE_COMPRESSION_LEVEL`); an unknown name warns and gives the default.
pub(super) fn compression_level(
    vars: &JobVars,
    variable: &str,
    log: &mut JobLog,
) -> CompressionLevel {
    let name = vars.get(variable).unwrap_or_default();
    name.parse()
        .unwrap_or_else(|e: crate::archive::InvalidCompressionLevel| {
            log.warning(&e.to_string());
            CompressionLevel::Default
        })
}

/// gitlab-runner prints its "Failed to ..." cache lines in the warning
/// colour but without the `WARNING:` prefix.
fn failure_line(log: &mut JobLog, text: &str) {
    log.write(format!("{}{text}{}\n", ansi::YELLOW, ansi::RESET).as_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::job::log::LogTarget;
    use crate::job::payload::JobVariable;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::{Arc, Mutex};

    /// A log target the test keeps a handle on.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl LogTarget for Captured {
        fn write(&mut self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
    }

    impl Captured {
        /// The log without colours: one string of lines.
        pub(crate) fn text(&self) -> String {
            let raw = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            let mut out = String::new();
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    // CSI: ESC [ params letter
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }

        pub(crate) fn lines(&self) -> Vec<String> {
            self.text().lines().map(str::to_owned).collect()
        }
    }

    pub(crate) fn captured_log() -> (JobLog, Captured) {
        let captured = Captured::default();
        let log = JobLog::new(Box::new(captured.clone()), &[], 1 << 20);
        (log, captured)
    }

    pub(crate) fn job_vars(list: &[(&str, &str)]) -> JobVars {
        let vars: Vec<JobVariable> = list
            .iter()
            .map(|(k, v)| JobVariable::public(*k, *v))
            .collect();
        JobVars::resolve(&[], &vars, &[], Path::new("/nonexistent.tmp"))
    }

    pub(crate) fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// `git init` plus one commit of everything in `dir`.
    pub(crate) fn git_commit_all(dir: &Path) {
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    }

    struct Fixture {
        _dirs: tempfile::TempDir,
        cache_dir: PathBuf,
        project: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dirs = tempfile::tempdir().unwrap();
            let cache_dir = dirs.path().join("cache");
            let project = dirs.path().join("project");
            fs::create_dir_all(&project).unwrap();
            Fixture {
                _dirs: dirs,
                cache_dir,
                project,
            }
        }

        fn ctx(&self) -> CacheContext<'_> {
            CacheContext {
                cache_dir: &self.cache_dir,
                project_path: "group/project",
                project_dir: &self.project,
                job_name: "build",
                git_ref: "main",
            }
        }

        fn archive(&self, key: &str) -> PathBuf {
            cache_path(&self.cache_dir, "group/project", key)
        }

        fn save(&self, caches: &[CacheSpec], vars: &JobVars, ok: bool) -> Captured {
            let (mut log, out) = captured_log();
            save_caches(&payload(caches), vars, &self.ctx(), ok, &mut log);
            out
        }

        fn restore(&self, caches: &[CacheSpec], vars: &JobVars) -> Captured {
            let (mut log, out) = captured_log();
            restore_caches(&payload(caches), vars, &self.ctx(), &mut log);
            out
        }

        /// Saves `rel` (holding `text`) under `key`, then removes it.
        fn seed(&self, key: &str, rel: &str, text: &str) {
            write(&self.project, rel, text);
            let spec = cache(key, &[rel]);
            self.save(&[spec], &job_vars(&[]), true);
            assert!(self.archive(key).is_file(), "seeded {key}");
            fs::remove_file(self.project.join(rel)).unwrap();
        }

        fn read(&self, rel: &str) -> Option<String> {
            fs::read_to_string(self.project.join(rel)).ok()
        }
    }

    fn payload(caches: &[CacheSpec]) -> JobPayload {
        JobPayload {
            cache: caches.to_vec(),
            ..JobPayload::default()
        }
    }

    fn cache(key: &str, paths: &[&str]) -> CacheSpec {
        CacheSpec {
            key: key.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            ..CacheSpec::default()
        }
    }

    #[test]
    fn a_saved_cache_is_restored_into_the_project_with_gitlab_lines() {
        let fx = Fixture::new();
        write(&fx.project, "vendor/lib.txt", "lib");
        let out = fx.save(&[cache("deps", &["vendor"])], &job_vars(&[]), true);
        let lines = out.lines();
        assert_eq!(lines[0], "Creating cache deps...");
        assert_eq!(
            lines[1],
            "vendor: found 2 matching artifact files and directories"
        );
        assert_eq!(lines[2], LOCAL_SAVE);
        assert_eq!(lines[3], "Created cache");
        assert!(fx.archive("deps").is_file());

        fs::remove_dir_all(fx.project.join("vendor")).unwrap();
        let out = fx.restore(&[cache("deps", &["vendor"])], &job_vars(&[]));
        assert_eq!(
            out.lines(),
            [
                "Checking cache for deps...",
                LOCAL_RESTORE,
                "Successfully extracted cache"
            ]
        );
        assert_eq!(fx.read("vendor/lib.txt").as_deref(), Some("lib"));
    }

    #[test]
    fn rule_190_keys_and_paths_are_expanded_with_the_job_variables() {
        let fx = Fixture::new();
        write(&fx.project, "out/a.txt", "a");
        let vars = job_vars(&[("CI_COMMIT_REF_SLUG", "feature-x"), ("DIR", "out")]);
        let spec = cache("deps-$CI_COMMIT_REF_SLUG", &["$DIR/"]);
        let out = fx.save(&[spec], &vars, true);
        assert!(out.text().contains("Creating cache deps-feature-x..."));
        assert!(
            out.text().contains("out/: found 2 matching"),
            "{}",
            out.text()
        );
        assert!(fx.archive("deps-feature-x").is_file());
    }

    #[test]
    fn an_empty_key_is_the_job_name_and_ref_as_a_subdirectory() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        let out = fx.save(&[cache("", &["a.txt"])], &job_vars(&[]), true);
        assert!(out.text().contains("Creating cache build/main..."));
        assert!(
            fx.cache_dir
                .join("group/project/build/main/cache.zip")
                .is_file()
        );
        assert!(!out.text().contains("sanitized"), "{}", out.text());
    }

    #[test]
    fn a_key_expanding_to_nothing_skips_the_cache() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        let out = fx.save(&[cache("$UNSET", &["a.txt"])], &job_vars(&[]), true);
        assert_eq!(
            out.lines(),
            ["Skipping cache archiving due to empty cache key"]
        );
        let out = fx.restore(&[cache("$UNSET", &["a.txt"])], &job_vars(&[]));
        assert_eq!(
            out.lines(),
            ["Skipping cache extraction due to empty cache key"]
        );
    }

    #[test]
    fn a_changed_key_is_announced_as_sanitized() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        let vars = job_vars(&[("REF", "feature/../x ")]);
        let out = fx.save(&[cache("deps-$REF", &["a.txt"])], &vars, true);
        let text = out.text();
        assert!(
            text.contains(r#"WARNING: cache key "deps-feature/../x " sanitized to "x""#),
            "{text}"
        );
        assert!(text.contains("Creating cache x..."), "{text}");
        assert!(fx.archive("x").is_file());
    }

    #[test]
    fn a_variable_with_a_slash_makes_a_subdirectory() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        let vars = job_vars(&[("CI_COMMIT_REF_NAME", "feature/login")]);
        fx.save(&[cache("$CI_COMMIT_REF_NAME", &["a.txt"])], &vars, true);
        assert!(fx.archive("feature/login").is_file());
    }

    #[test]
    fn rule_217_a_yaml_key_with_a_slash_is_one_warning_and_no_cache() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        let out = fx.save(&[cache("a/b", &["a.txt"])], &job_vars(&[]), true);
        assert_eq!(
            out.lines(),
            [r#"WARNING: jobs:build:cache:key config cannot contain the "/" character"#]
        );
        assert!(!fx.cache_dir.exists());
        let out = fx.restore(&[cache("a/b", &["a.txt"])], &job_vars(&[]));
        assert_eq!(out.lines().len(), 1);
    }

    #[test]
    fn rule_219_restore_tries_the_key_then_fallback_keys_then_cache_fallback_key() {
        let fx = Fixture::new();
        fx.seed("second", "f.txt", "from second");
        fx.seed("global", "f.txt", "from global");
        let mut spec = cache("main-key", &["f.txt"]);
        spec.fallback_keys = vec!["first".into(), "sec$SUFFIX".into()];
        let vars = job_vars(&[("SUFFIX", "ond"), ("CACHE_FALLBACK_KEY", "global")]);
        let out = fx.restore(std::slice::from_ref(&spec), &vars);
        let checked: Vec<String> = out
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("Checking cache"))
            .collect();
        assert_eq!(
            checked,
            [
                "Checking cache for main-key...",
                "Checking cache for first...",
                "Checking cache for second..."
            ]
        );
        assert_eq!(out.text().matches("Failed to extract cache").count(), 2);
        assert_eq!(
            out.text()
                .matches("WARNING: Cache file does not exist")
                .count(),
            2
        );
        assert_eq!(fx.read("f.txt").as_deref(), Some("from second"));

        // Without the fallback keys, CACHE_FALLBACK_KEY is the last resort.
        fs::remove_file(fx.project.join("f.txt")).unwrap();
        spec.fallback_keys.clear();
        let out = fx.restore(&[spec], &vars);
        assert!(out.text().contains("Checking cache for global..."));
        assert_eq!(fx.read("f.txt").as_deref(), Some("from global"));
    }

    #[test]
    fn a_protected_cache_fallback_key_is_refused() {
        let fx = Fixture::new();
        fx.seed("main-protected", "f.txt", "protected");
        for value in ["main-protected", "main-protected. "] {
            let vars = job_vars(&[("CACHE_FALLBACK_KEY", value)]);
            let out = fx.restore(&[cache("other", &["f.txt"])], &vars);
            let text = out.text();
            assert!(
                text.contains(&format!(
                    "WARNING: CACHE_FALLBACK_KEY {value:?} not allowed to end in \"-protected\""
                )),
                "{text}"
            );
            assert!(
                !text.contains("Checking cache for main-protected"),
                "{text}"
            );
            assert_eq!(fx.read("f.txt"), None);
        }
    }

    #[test]
    fn rule_219_each_policy_pulls_and_pushes_as_named() {
        let table = [
            ("", true, true),
            ("pull-push", true, true),
            ("pull", true, false),
            ("push", false, true),
            ("$POLICY", true, false),
        ];
        for (policy, pulls, pushes) in table {
            let fx = Fixture::new();
            let vars = job_vars(&[("POLICY", "pull")]);
            fx.seed("k", "f.txt", "cached");
            let mut spec = cache("k", &["f.txt"]);
            spec.policy = policy.into();
            let out = fx.restore(std::slice::from_ref(&spec), &vars);
            assert_eq!(fx.read("f.txt").is_some(), pulls, "{policy}");
            if !pulls {
                assert_eq!(out.lines(), ["Not downloading cache k due to policy"]);
            }

            write(&fx.project, "f.txt", "new");
            fs::remove_file(fx.archive("k")).unwrap();
            let out = fx.save(&[spec], &vars, true);
            assert_eq!(fx.archive("k").is_file(), pushes, "{policy}");
            if !pushes {
                assert_eq!(out.lines(), ["Not uploading cache k due to policy"]);
            }
        }
    }

    #[test]
    fn an_unknown_policy_warns_and_skips_only_that_cache() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        let mut bad = cache("bad", &["a.txt"]);
        bad.policy = "pul".into();
        let out = fx.save(&[bad, cache("good", &["a.txt"])], &job_vars(&[]), true);
        assert!(
            out.text()
                .contains("WARNING: unknown cache policy pul for bad")
        );
        assert!(!fx.archive("bad").exists());
        assert!(fx.archive("good").is_file());
    }

    #[test]
    fn rule_219_when_decides_saving_by_the_job_result() {
        let table = [
            ("", true, false),
            ("on_success", true, false),
            ("on_failure", false, true),
            ("always", true, true),
            ("sometimes", false, false),
        ];
        for (when, on_success, on_failure) in table {
            for (ok, want) in [(true, on_success), (false, on_failure)] {
                let fx = Fixture::new();
                write(&fx.project, "a.txt", "a");
                let mut spec = cache("k", &["a.txt"]);
                spec.when = when.into();
                fx.save(&[spec], &job_vars(&[]), ok);
                assert_eq!(fx.archive("k").is_file(), want, "when {when:?} ok {ok}");
            }
        }
    }

    #[test]
    fn an_unchanged_cache_is_not_written_again() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        fx.save(&[cache("k", &["a.txt"])], &job_vars(&[]), true);
        let written = fs::metadata(fx.archive("k")).unwrap().modified().unwrap();
        let out = fx.save(&[cache("k", &["a.txt"])], &job_vars(&[]), true);
        assert!(out.lines().contains(&"Archive is up to date!".to_owned()));
        assert!(!out.text().contains(LOCAL_SAVE));
        let now = fs::metadata(fx.archive("k")).unwrap().modified().unwrap();
        assert_eq!(written, now);

        // A file changed after the archive was written makes a new one.
        let later = written + std::time::Duration::from_secs(5);
        let file = fs::File::options()
            .write(true)
            .open(fx.project.join("a.txt"))
            .unwrap();
        file.set_modified(later).unwrap();
        let out = fx.save(&[cache("k", &["a.txt"])], &job_vars(&[]), true);
        assert!(!out.text().contains("Archive is up to date!"));
        assert!(out.text().contains("Created cache"));
    }

    #[test]
    fn untracked_caches_the_files_git_does_not_track() {
        let fx = Fixture::new();
        write(&fx.project, "tracked.txt", "t");
        git_commit_all(&fx.project);
        write(&fx.project, "build/out.bin", "bin");
        let spec = CacheSpec {
            key: "k".into(),
            untracked: true,
            ..CacheSpec::default()
        };
        let out = fx.save(std::slice::from_ref(&spec), &job_vars(&[]), true);
        assert!(
            out.text().contains("untracked: found 1 files"),
            "{}",
            out.text()
        );

        let elsewhere = Fixture::new();
        let ctx = CacheContext {
            project_dir: &elsewhere.project,
            ..fx.ctx()
        };
        let (mut log, _) = captured_log();
        restore_caches(&payload(&[spec]), &job_vars(&[]), &ctx, &mut log);
        assert_eq!(
            fs::read_to_string(elsewhere.project.join("build/out.bin")).unwrap(),
            "bin"
        );
        assert!(!elsewhere.project.join("tracked.txt").exists());
    }

    #[test]
    fn rule_216_a_cache_with_neither_paths_nor_untracked_is_skipped_silently() {
        let fx = Fixture::new();
        let out = fx.save(&[cache("k", &[])], &job_vars(&[]), true);
        assert_eq!(out.text(), "");
        let out = fx.restore(&[cache("k", &[])], &job_vars(&[]));
        assert_eq!(out.text(), "");
    }

    #[test]
    fn two_caches_are_saved_and_restored_independently() {
        let fx = Fixture::new();
        write(&fx.project, "a/1.txt", "one");
        write(&fx.project, "b/2.txt", "two");
        let caches = [cache("ka", &["a"]), cache("kb", &["b/*.txt"])];
        let out = fx.save(&caches, &job_vars(&[]), true);
        assert_eq!(out.text().matches("Created cache").count(), 2);
        fs::remove_dir_all(fx.project.join("a")).unwrap();
        fs::remove_dir_all(fx.project.join("b")).unwrap();
        let out = fx.restore(&caches, &job_vars(&[]));
        assert_eq!(
            out.text().matches("Successfully extracted cache").count(),
            2
        );
        assert_eq!(fx.read("a/1.txt").as_deref(), Some("one"));
        assert_eq!(fx.read("b/2.txt").as_deref(), Some("two"));
    }

    #[test]
    fn paths_that_match_nothing_warn_like_gitlab() {
        let fx = Fixture::new();
        let out = fx.save(&[cache("k", &["missing/"])], &job_vars(&[]), true);
        let text = out.text();
        assert!(
            text.contains("WARNING: missing/: no matching files. Ensure that the artifact path is relative to the working directory"),
            "{text}"
        );
        assert!(text.contains("Created cache"));
    }

    #[test]
    fn a_corrupt_archive_only_warns() {
        let fx = Fixture::new();
        fs::create_dir_all(fx.archive("k").parent().unwrap()).unwrap();
        fs::write(fx.archive("k"), "this is not a zip").unwrap();
        let out = fx.restore(&[cache("k", &["a.txt"])], &job_vars(&[]));
        let lines = out.lines();
        assert_eq!(lines[0], "Checking cache for k...");
        assert!(
            lines[2].starts_with("WARNING: invalid zip archive"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "Failed to extract cache");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn a_failed_write_leaves_no_archive_behind() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", "a");
        // A directory where the archive should go: the final rename fails.
        let dest = fx.archive("k");
        fs::create_dir_all(dest.join("occupied")).unwrap();
        let out = fx.save(&[cache("k", &["a.txt"])], &job_vars(&[]), true);
        let text = out.text();
        assert!(text.contains("WARNING: cannot replace"), "{text}");
        assert!(text.ends_with("Failed to create cache\n"), "{text}");
        let left: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["cache.zip"], "only the directory in the way remains");
        assert!(dest.is_dir());

        // A file where the key's directory should be: nothing is created.
        let blocked = fx.archive("blocked");
        fs::write(blocked.parent().unwrap(), "file").unwrap();
        let out = fx.save(&[cache("blocked", &["a.txt"])], &job_vars(&[]), true);
        assert!(out.text().contains("Failed to create cache"));
        assert!(!blocked.exists());
    }

    #[test]
    fn the_compression_level_variable_is_honoured_and_checked() {
        let fx = Fixture::new();
        write(&fx.project, "a.txt", &"compressible ".repeat(1000));
        let vars = job_vars(&[("CACHE_COMPRESSION_LEVEL", "fastest")]);
        fx.save(&[cache("stored", &["a.txt"])], &vars, true);
        let vars = job_vars(&[("CACHE_COMPRESSION_LEVEL", "turbo")]);
        let out = fx.save(&[cache("deflated", &["a.txt"])], &vars, true);
        assert!(
            out.text()
                .contains("WARNING: compression level \"turbo\" is invalid")
        );
        let size = |key| fs::metadata(fx.archive(key)).unwrap().len();
        assert!(size("stored") > 13_000, "fastest stores");
        assert!(size("deflated") < 2_000, "default deflates");
    }

    #[test]
    fn restored_files_keep_their_modes() {
        let fx = Fixture::new();
        write(&fx.project, "bin/tool", "#!/bin/sh\n");
        fs::set_permissions(
            fx.project.join("bin/tool"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fx.save(&[cache("k", &["bin"])], &job_vars(&[]), true);
        fs::remove_dir_all(fx.project.join("bin")).unwrap();
        fx.restore(&[cache("k", &["bin"])], &job_vars(&[]));
        let mode = fs::metadata(fx.project.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
