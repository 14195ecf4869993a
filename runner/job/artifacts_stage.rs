//! The `download_artifacts` and `upload_artifacts` stages: the archives of
//! earlier jobs extracted into the project before the script, and this
//! job's `artifacts:` and reports packed and handed over after it.
//!
//! Where archives go and come from is an [`ArtifactTransport`]: a local
//! directory store for `runner exec`/`runner pipeline`, GitLab's API for
//! the registered agent. The stages only select, pack and extract, so both
//! sides log and behave the same.
//!
//! Unlike a cache, artifacts are part of the job's result: a download that
//! fails, or an upload that fails, fails the job (the caller decides what
//! that means once the job has already failed).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use flate2::{Compression, GzBuilder};

use crate::archive::{ArchiveError, Entry, ZipOptions, extract_zip, select_paths, write_zip};

use super::cache_stage::{compression_level, log_select_notes, when_matches};
use super::log::JobLog;
use super::payload::{ArtifactSpec, Dependency, JobPayload};
use super::vars::JobVars;

/// How one artifact entry is packed, from the payload's `artifact_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactFormat {
    /// A zip archive with modes and symbolic links (`archive`, `lsif`).
    Zip,
    /// Each file as one gzip member, one after the other (`junit`,
    /// `dotenv`, ... reports).
    Gzip,
    /// One file as it is (`sast`, `codequality`, ... reports).
    Raw,
}

impl ArtifactFormat {
    /// The payload's format name; empty means zip, as in gitlab-runner.
    /// `zipzstd` and `tarzstd` are not supported.
    pub fn parse(name: &str) -> Option<ArtifactFormat> {
        match name {
            "" | "zip" => Some(ArtifactFormat::Zip),
            "gzip" => Some(ArtifactFormat::Gzip),
            "raw" => Some(ArtifactFormat::Raw),
            _ => None,
        }
    }

    /// The name GitLab gets for an upload named `name`: gitlab-runner's
    /// uploader takes the base name, `default` when nothing is left, and
    /// adds `.zip` or `.gz`.
    pub fn file_name(self, name: &str) -> String {
        let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let base = if matches!(base, "" | "." | "..") {
            "default"
        } else {
            base
        };
        match self {
            ArtifactFormat::Zip => format!("{base}.zip"),
            ArtifactFormat::Gzip => format!("{base}.gz"),
            ArtifactFormat::Raw => base.to_owned(),
        }
    }
}

/// One packed artifact entry, ready to hand over.
#[derive(Clone, Copy, Debug)]
pub struct ArtifactUpload<'a> {
    /// The job the artifacts belong to, and its token for the API.
    pub job_id: u64,
    pub job_token: &'a str,
    /// `archive` or a report type such as `junit`.
    pub artifact_type: &'a str,
    pub format: ArtifactFormat,
    /// The upload's file name (see [`ArtifactFormat::file_name`]).
    pub file_name: &'a str,
    /// `expire_in` as written in the YAML, passed through.
    pub expire_in: Option<&'a str>,
    /// The packed file.
    pub archive: &'a Path,
}

/// Where artifacts go and come from: a local directory store now; the
/// registered agent implements it over GitLab's API.
pub trait ArtifactTransport: Send + Sync {
    /// Stores one packed entry. Returns the line to log, worded like
    /// gitlab-runner's (`Uploading artifacts as "archive" to ... ok`).
    fn upload(&self, upload: &ArtifactUpload<'_>) -> Result<String, TransportError>;

    /// Fetches the archive of `dependency` into the zip file `dest`.
    /// Returns the line to log.
    fn download(&self, dependency: &Dependency, dest: &Path) -> Result<String, TransportError>;
}

/// Why a transport could not store or fetch an archive.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The job has no archive (never uploaded, or expired).
    #[error("no artifacts archive for job {job_id}")]
    NotFound { job_id: u64 },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A stored dotenv report that cannot be read as variables.
    #[error("dotenv report of job {job_id}: {source}")]
    Dotenv { job_id: u64, source: ArchiveError },
    /// The other side refused (an HTTP status, an invalid name, ...).
    #[error("{0}")]
    Refused(String),
}

/// Why an artifacts stage failed; the job fails with it.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactStageError {
    #[error("downloading artifacts for {name} ({id}): {source}")]
    Download {
        name: String,
        id: u64,
        source: TransportError,
    },
    #[error("extracting artifacts for {name} ({id}): {source}")]
    Extract {
        name: String,
        id: u64,
        source: ArchiveError,
    },
    #[error("artifact format {format:?} of {artifact_type} artifacts is not supported")]
    UnsupportedFormat {
        artifact_type: String,
        format: String,
    },
    /// Selecting or packing the files failed.
    #[error("packing {artifact_type} artifacts: {reason}")]
    Pack {
        artifact_type: String,
        reason: String,
    },
    #[error("uploading {artifact_type} artifacts: {source}")]
    Upload {
        artifact_type: String,
        source: TransportError,
    },
}

/// Downloads and extracts into `project_dir` the archive of every
/// dependency that has one; dependencies without one are skipped silently,
/// as in gitlab-runner. The archives pass through `tmp_dir`.
pub fn download_artifacts(
    payload: &JobPayload,
    project_dir: &Path,
    tmp_dir: &Path,
    transport: &dyn ArtifactTransport,
    log: &mut JobLog,
) -> Result<(), ArtifactStageError> {
    for dep in &payload.dependencies {
        if dep
            .artifacts_file
            .as_ref()
            .is_none_or(|f| f.filename.is_empty())
        {
            continue;
        }
        log.notice(&format!(
            "Downloading artifacts for {} ({})...",
            dep.name, dep.id
        ));
        let result = download_one(dep, project_dir, tmp_dir, transport, log);
        if let Err(e) = &result {
            log.error(&e.to_string());
        }
        result?;
    }
    Ok(())
}

fn download_one(
    dep: &Dependency,
    project_dir: &Path,
    tmp_dir: &Path,
    transport: &dyn ArtifactTransport,
    log: &mut JobLog,
) -> Result<(), ArtifactStageError> {
    let download_error = |source| ArtifactStageError::Download {
        name: dep.name.clone(),
        id: dep.id,
        source,
    };
    fs::create_dir_all(tmp_dir).map_err(|source| {
        download_error(TransportError::Io {
            action: "create directory",
            path: tmp_dir.to_owned(),
            source,
        })
    })?;
    let temp = Removed(tmp_dir.join(format!("artifacts-{}.zip", dep.id)));
    log.info(&transport.download(dep, &temp.0).map_err(download_error)?);
    let summary =
        extract_zip(&temp.0, project_dir).map_err(|source| ArtifactStageError::Extract {
            name: dep.name.clone(),
            id: dep.id,
            source,
        })?;
    for warning in &summary.warnings {
        log.warning(warning);
    }
    Ok(())
}

/// Packs and uploads each artifact entry whose `when` matches the job's
/// result, in payload order, stopping at the first failure. Entries that
/// match no files only log `No files to upload`, as in gitlab-runner.
/// Packed files are written in `tmp_dir` and removed after the upload.
pub fn upload_artifacts(
    payload: &JobPayload,
    vars: &JobVars,
    project_dir: &Path,
    tmp_dir: &Path,
    transport: &dyn ArtifactTransport,
    job_succeeded: bool,
    log: &mut JobLog,
) -> Result<(), ArtifactStageError> {
    let uploader = Uploader {
        payload,
        vars,
        project_dir,
        tmp_dir,
        transport,
    };
    for (index, spec) in payload.artifacts.iter().enumerate() {
        if !when_matches(spec.when.as_deref().unwrap_or(""), job_succeeded) {
            continue;
        }
        // gitlab-runner skips an entry only when it names nothing at all.
        if spec.paths.is_empty() && spec.exclude.is_empty() && !spec.untracked {
            continue;
        }
        log.notice("Uploading artifacts...");
        let result = uploader.upload(spec, index, log);
        if let Err(e) = &result {
            log.error(&e.to_string());
        }
        result?;
    }
    Ok(())
}

/// What every upload of one job shares.
struct Uploader<'a> {
    payload: &'a JobPayload,
    vars: &'a JobVars,
    project_dir: &'a Path,
    tmp_dir: &'a Path,
    transport: &'a dyn ArtifactTransport,
}

impl Uploader<'_> {
    /// Selects, packs and uploads the `index`th entry.
    fn upload(
        &self,
        spec: &ArtifactSpec,
        index: usize,
        log: &mut JobLog,
    ) -> Result<(), ArtifactStageError> {
        let artifact_type = if spec.artifact_type.is_empty() {
            "archive"
        } else {
            spec.artifact_type.as_str()
        };
        let pack_error = |reason: String| ArtifactStageError::Pack {
            artifact_type: artifact_type.to_owned(),
            reason,
        };
        let format = ArtifactFormat::parse(&spec.artifact_format).ok_or_else(|| {
            ArtifactStageError::UnsupportedFormat {
                artifact_type: artifact_type.to_owned(),
                format: spec.artifact_format.clone(),
            }
        })?;
        let expand = |list: &[String]| list.iter().map(|p| self.vars.expand(p)).collect::<Vec<_>>();
        let selection = select_paths(
            self.project_dir,
            &expand(&spec.paths),
            &expand(&spec.exclude),
            spec.untracked,
        )
        .map_err(|e| pack_error(e.to_string()))?;
        log_select_notes(&selection.notes, log);
        if selection.entries.is_empty() {
            log.error("No files to upload");
            return Ok(());
        }

        let name = match spec.name.as_deref() {
            None | Some("") => "artifacts".to_owned(),
            Some(name) => self.vars.expand(name),
        };
        let file_name = format.file_name(&name);
        fs::create_dir_all(self.tmp_dir)
            .map_err(|e| pack_error(format!("cannot create {}: {e}", self.tmp_dir.display())))?;
        let temp = Removed(self.tmp_dir.join(format!("upload-{index}-{file_name}")));
        let archive = match format {
            ArtifactFormat::Zip => {
                let options = ZipOptions {
                    level: compression_level(self.vars, "ARTIFACT_COMPRESSION_LEVEL", log),
                    threads: 0,
                };
                let summary = write_zip(self.project_dir, &selection.entries, &temp.0, &options)
                    .map_err(|e| pack_error(e.to_string()))?;
                for warning in &summary.warnings {
                    log.warning(warning);
                }
                temp.0.clone()
            }
            ArtifactFormat::Gzip => {
                write_gzip(self.project_dir, &selection.entries, &temp.0, log)
                    .map_err(pack_error)?;
                temp.0.clone()
            }
            ArtifactFormat::Raw => {
                raw_file(self.project_dir, &selection.entries).map_err(pack_error)?
            }
        };
        let upload = ArtifactUpload {
            job_id: self.payload.id,
            job_token: &self.payload.token,
            artifact_type,
            format,
            file_name: &file_name,
            expire_in: spec.expire_in.as_deref(),
            archive: &archive,
        };
        let line = self
            .transport
            .upload(&upload)
            .map_err(|source| ArtifactStageError::Upload {
                artifact_type: artifact_type.to_owned(),
                source,
            })?;
        log.info(&line);
        Ok(())
    }
}

/// gitlab-runner's gzip format: each file its own gzip member, named by
/// its base name, its project path as the comment. Only regular files can
/// be packed this way.
fn write_gzip(
    project_dir: &Path,
    entries: &[Entry],
    dest: &Path,
    log: &mut JobLog,
) -> Result<(), String> {
    let io_error = |path: &Path, e: io::Error| format!("{}: {e}", path.display());
    let file = File::create(dest).map_err(|e| io_error(dest, e))?;
    let mut out = BufWriter::new(file);
    for entry in entries {
        let path = project_dir.join(&entry.path);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log.warning(&format!("File ignored: {}: {e}", entry.path));
                continue;
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        if !meta.file_type().is_file() {
            return Err(format!("the {:?} is not a regular file", entry.path));
        }
        let base = entry.path.rsplit('/').next().unwrap_or(&entry.path);
        // The gzip header holds 32-bit seconds; later times are left out.
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u32::try_from(d.as_secs()).ok())
            .unwrap_or(0);
        // Names come from the file system, which has no NUL bytes.
        let mut gz = GzBuilder::new()
            .filename(base.as_bytes())
            .comment(entry.path.as_bytes())
            .mtime(mtime)
            .write(&mut out, Compression::default());
        let mut input = File::open(&path).map_err(|e| io_error(&path, e))?;
        io::copy(&mut input, &mut gz).map_err(|e| io_error(&path, e))?;
        gz.finish().map_err(|e| io_error(dest, e))?;
    }
    out.flush().map_err(|e| io_error(dest, e))
}

/// The one regular file a raw upload sends as it is.
fn raw_file(project_dir: &Path, entries: &[Entry]) -> Result<PathBuf, String> {
    let [entry] = entries else {
        return Err("only one file can be sent as raw".to_owned());
    };
    let path = project_dir.join(&entry.path);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_file() => Ok(path),
        Ok(_) => Err(format!("the {:?} is not a regular file", entry.path)),
        Err(e) => Err(format!("{}: {e}", entry.path)),
    }
}

/// A temporary file removed when dropped, whatever happened.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        // Missing is fine: the step that makes it may have failed.
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::artifact_store::LocalArtifactStore;
    use crate::job::cache_stage::tests::{Captured, captured_log, git_commit_all, job_vars, write};
    use crate::job::payload::ArtifactsFile;
    use std::os::unix::fs::symlink;
    use std::sync::Mutex;

    /// What the stage handed over, kept for the test.
    #[derive(Clone, Debug)]
    struct Sent {
        artifact_type: String,
        format: ArtifactFormat,
        file_name: String,
        expire_in: Option<String>,
        bytes: Vec<u8>,
    }

    /// The local store, recording each upload.
    struct Recorder {
        store: LocalArtifactStore,
        sent: Mutex<Vec<Sent>>,
    }

    impl ArtifactTransport for Recorder {
        fn upload(&self, upload: &ArtifactUpload<'_>) -> Result<String, TransportError> {
            self.sent.lock().unwrap().push(Sent {
                artifact_type: upload.artifact_type.to_owned(),
                format: upload.format,
                file_name: upload.file_name.to_owned(),
                expire_in: upload.expire_in.map(str::to_owned),
                bytes: fs::read(upload.archive).unwrap(),
            });
            self.store.upload(upload)
        }

        fn download(&self, dependency: &Dependency, dest: &Path) -> Result<String, TransportError> {
            self.store.download(dependency, dest)
        }
    }

    struct Fixture {
        dirs: tempfile::TempDir,
        project: PathBuf,
        tmp: PathBuf,
        transport: Recorder,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dirs = tempfile::tempdir().unwrap();
            let project = dirs.path().join("project");
            fs::create_dir_all(&project).unwrap();
            let tmp = dirs.path().join("project.tmp");
            let transport = Recorder {
                store: LocalArtifactStore::new(dirs.path().join("store")),
                sent: Mutex::default(),
            };
            Fixture {
                dirs,
                project,
                tmp,
                transport,
            }
        }

        fn upload(
            &self,
            specs: &[ArtifactSpec],
            vars: &JobVars,
            ok: bool,
        ) -> (Result<(), ArtifactStageError>, Captured) {
            let payload = JobPayload {
                id: 7,
                artifacts: specs.to_vec(),
                ..JobPayload::default()
            };
            let (mut log, out) = captured_log();
            let result = upload_artifacts(
                &payload,
                vars,
                &self.project,
                &self.tmp,
                &self.transport,
                ok,
                &mut log,
            );
            (result, out)
        }

        fn sent(&self) -> Vec<Sent> {
            self.transport.sent.lock().unwrap().clone()
        }

        /// The entry names of the one zip uploaded, directories without
        /// their trailing `/`.
        fn zip_names(&self) -> Vec<String> {
            let sent = self.sent();
            assert_eq!(sent.len(), 1, "{sent:?}");
            let zip = zip::ZipArchive::new(io::Cursor::new(sent[0].bytes.clone())).unwrap();
            let mut names: Vec<String> = zip
                .file_names()
                .map(|n| n.expect("entry name").trim_end_matches('/').to_owned())
                .collect();
            names.sort();
            names
        }

        fn tmp_is_empty(&self) -> bool {
            fs::read_dir(&self.tmp).map_or(true, |mut d| d.next().is_none())
        }
    }

    fn archive(paths: &[&str]) -> ArtifactSpec {
        ArtifactSpec {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            artifact_type: "archive".into(),
            artifact_format: "zip".into(),
            ..ArtifactSpec::default()
        }
    }

    fn report(kind: &str, format: &str, paths: &[&str]) -> ArtifactSpec {
        ArtifactSpec {
            when: Some("always".into()),
            artifact_type: kind.into(),
            artifact_format: format.into(),
            ..archive(paths)
        }
    }

    fn tree(fx: &Fixture) {
        for file in ["a.txt", "sub/b.txt", "build/x.o", "build/lib/y.o"] {
            write(&fx.project, file, file);
        }
    }

    #[test]
    fn rule_203_a_matched_directory_is_taken_whole_and_star_stays_at_the_top() {
        let fx = Fixture::new();
        tree(&fx);
        let (result, out) = fx.upload(&[archive(&["build", "*.txt"])], &job_vars(&[]), true);
        result.unwrap();
        assert_eq!(
            fx.zip_names(),
            ["a.txt", "build", "build/lib", "build/lib/y.o", "build/x.o"]
        );
        assert_eq!(
            out.lines(),
            [
                "Uploading artifacts...",
                "build: found 4 matching artifact files and directories",
                "*.txt: found 1 matching artifact files and directories",
                r#"Uploading artifacts as "archive" to the local store... ok  id=7"#,
            ]
        );
        assert!(fx.transport.store.has_archive(7).is_some());
        assert!(fx.tmp_is_empty(), "the packed archive is removed");
    }

    #[test]
    fn rule_204_exclude_removes_what_it_matches_only() {
        let fx = Fixture::new();
        tree(&fx);
        let mut spec = archive(&["build/"]);
        spec.exclude = vec!["build/lib/**/*".into(), "$EXT".into()];
        let vars = job_vars(&[("EXT", "build/*.o")]);
        let (result, out) = fx.upload(&[spec], &vars, true);
        result.unwrap();
        assert_eq!(fx.zip_names(), ["build", "build/lib"]);
        assert!(
            out.text().contains("build/*.o: excluded 1 files"),
            "{}",
            out.text()
        );
    }

    #[test]
    fn rule_210_untracked_uploads_what_git_does_not_track() {
        let fx = Fixture::new();
        write(&fx.project, "src/main.c", "int main;");
        write(&fx.project, ".gitignore", "*.log\n");
        git_commit_all(&fx.project);
        write(&fx.project, "app.bin", "bin");
        write(&fx.project, "debug.log", "log");
        let spec = ArtifactSpec {
            untracked: true,
            ..archive(&[])
        };
        let (result, _) = fx.upload(&[spec], &job_vars(&[]), true);
        result.unwrap();
        assert_eq!(fx.zip_names(), ["app.bin", "debug.log"]);
    }

    #[test]
    fn rule_206_when_decides_by_the_job_result() {
        let table = [
            (None, true, false),
            (Some("on_success"), true, false),
            (Some("on_failure"), false, true),
            (Some("always"), true, true),
            (Some("never"), false, false),
        ];
        for (when, on_success, on_failure) in table {
            for (ok, want) in [(true, on_success), (false, on_failure)] {
                let fx = Fixture::new();
                tree(&fx);
                let spec = ArtifactSpec {
                    when: when.map(str::to_owned),
                    ..archive(&["a.txt"])
                };
                let (result, out) = fx.upload(&[spec], &job_vars(&[]), ok);
                result.unwrap();
                assert_eq!(fx.sent().len(), usize::from(want), "{when:?} {ok}");
                assert_eq!(out.text().is_empty(), !want);
            }
        }
    }

    #[test]
    fn rule_208_the_name_defaults_to_artifacts_and_is_expanded() {
        let fx = Fixture::new();
        tree(&fx);
        let vars = job_vars(&[("CI_JOB_NAME", "linux"), ("DIR", "out/")]);
        let named = |name: Option<&str>| ArtifactSpec {
            name: name.map(str::to_owned),
            expire_in: Some("1 week".into()),
            ..archive(&["a.txt"])
        };
        let specs = [
            named(None),
            named(Some("")),
            named(Some("$CI_JOB_NAME-build")),
            named(Some("${DIR}bundle")),
        ];
        fx.upload(&specs, &vars, true).0.unwrap();
        let names: Vec<String> = fx.sent().into_iter().map(|s| s.file_name).collect();
        assert_eq!(
            names,
            [
                "artifacts.zip",
                "artifacts.zip",
                "linux-build.zip",
                "bundle.zip"
            ]
        );
        assert_eq!(fx.sent()[0].expire_in.as_deref(), Some("1 week"));

        let zip = ArtifactFormat::Zip;
        assert_eq!(zip.file_name("a/b/"), "b.zip");
        assert_eq!(zip.file_name("/"), "default.zip");
        assert_eq!(zip.file_name("."), "default.zip");
        assert_eq!(ArtifactFormat::Gzip.file_name("junit.xml"), "junit.xml.gz");
        assert_eq!(
            ArtifactFormat::Raw.file_name("gl-sast.json"),
            "gl-sast.json"
        );
    }

    #[test]
    fn rule_203_a_path_outside_the_project_is_refused_by_name() {
        let fx = Fixture::new();
        fs::write(fx.dirs.path().join("secret"), "s").unwrap();
        let (result, out) = fx.upload(&[archive(&["../secret"])], &job_vars(&[]), true);
        result.unwrap();
        assert_eq!(
            out.lines(),
            [
                "Uploading artifacts...",
                "WARNING: processPath: artifact path is not a subpath of project directory: ../secret",
                "ERROR: No files to upload",
            ]
        );
        assert!(fx.sent().is_empty());
    }

    #[test]
    fn nothing_matched_warns_and_uploads_nothing_without_failing() {
        let fx = Fixture::new();
        let (result, out) = fx.upload(&[archive(&["missing.txt"])], &job_vars(&[]), true);
        result.unwrap();
        let dir = std::path::absolute(&fx.project).unwrap();
        assert_eq!(
            out.lines(),
            [
                "Uploading artifacts...".to_owned(),
                format!(
                    "WARNING: missing.txt: no matching files. Ensure that the artifact path is relative to the working directory ({})",
                    dir.display()
                ),
                "ERROR: No files to upload".to_owned(),
            ]
        );
        assert!(fx.sent().is_empty());
        assert!(fx.transport.store.has_archive(7).is_none());
    }

    #[test]
    fn an_entry_naming_nothing_is_skipped_silently() {
        let fx = Fixture::new();
        let (result, out) = fx.upload(&[archive(&[])], &job_vars(&[]), true);
        result.unwrap();
        assert_eq!(out.text(), "");
    }

    #[test]
    fn symlinks_are_uploaded_as_links() {
        let fx = Fixture::new();
        write(&fx.project, "dist/app", "app");
        symlink("app", fx.project.join("dist/current")).unwrap();
        symlink("/etc/passwd", fx.project.join("dist/outside")).unwrap();
        fx.upload(&[archive(&["dist"])], &job_vars(&[]), true)
            .0
            .unwrap();
        let sent = fx.sent();
        let mut zip = zip::ZipArchive::new(io::Cursor::new(sent[0].bytes.clone())).unwrap();
        for (name, target) in [("dist/current", "app"), ("dist/outside", "/etc/passwd")] {
            let mut entry = zip.by_name(name).unwrap();
            assert!(entry.is_symlink(), "{name}");
            let mut text = String::new();
            io::Read::read_to_string(&mut entry, &mut text).unwrap();
            assert_eq!(text, target, "the link text, never the file");
        }
    }

    #[test]
    fn gzip_reports_are_one_member_per_file() {
        let fx = Fixture::new();
        write(&fx.project, "reports/a.xml", "<a/>");
        write(&fx.project, "reports/b.xml", "<b/>");
        let spec = report("junit", "gzip", &["reports/*.xml"]);
        let (result, out) = fx.upload(&[spec], &job_vars(&[]), false);
        result.unwrap();
        assert!(out.text().contains(r#"Uploading artifacts as "junit""#));
        let sent = fx.sent();
        assert_eq!(sent[0].artifact_type, "junit");
        assert_eq!(sent[0].format, ArtifactFormat::Gzip);
        assert_eq!(sent[0].file_name, "artifacts.gz");

        let mut first = flate2::read::GzDecoder::new(&sent[0].bytes[..]);
        let mut text = String::new();
        io::Read::read_to_string(&mut first, &mut text).unwrap();
        assert_eq!(text, "<a/>");
        let header = first.header().unwrap();
        assert_eq!(header.filename(), Some(&b"a.xml"[..]));
        assert_eq!(header.comment(), Some(&b"reports/a.xml"[..]));

        let mut all = String::new();
        let mut reader = flate2::read::MultiGzDecoder::new(&sent[0].bytes[..]);
        io::Read::read_to_string(&mut reader, &mut all).unwrap();
        assert_eq!(all, "<a/><b/>");
    }

    #[test]
    fn a_gzip_report_of_a_directory_fails_the_upload() {
        let fx = Fixture::new();
        write(&fx.project, "reports/a.xml", "<a/>");
        let (result, out) = fx.upload(
            &[report("junit", "gzip", &["reports"])],
            &job_vars(&[]),
            true,
        );
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"packing junit artifacts: the "reports" is not a regular file"#
        );
        assert!(out.text().contains(&format!("ERROR: {err}")));
        assert!(fx.sent().is_empty());
        assert!(fx.tmp_is_empty(), "a failed pack leaves nothing behind");
    }

    #[test]
    fn raw_reports_send_exactly_one_file_as_it_is() {
        let fx = Fixture::new();
        write(&fx.project, "gl-code-quality-report.json", "[]");
        let mut spec = report("codequality", "raw", &["gl-code-quality-report.json"]);
        spec.name = Some("gl-code-quality-report.json".into());
        fx.upload(&[spec], &job_vars(&[]), true).0.unwrap();
        let sent = fx.sent();
        assert_eq!(sent[0].bytes, b"[]");
        assert_eq!(sent[0].file_name, "gl-code-quality-report.json");

        write(&fx.project, "second.json", "{}");
        let spec = report("codequality", "raw", &["*.json"]);
        let err = fx.upload(&[spec], &job_vars(&[]), true).0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "packing codequality artifacts: only one file can be sent as raw"
        );
    }

    #[test]
    fn an_unsupported_format_fails_the_upload() {
        let fx = Fixture::new();
        tree(&fx);
        let spec = report("archive", "tarzstd", &["a.txt"]);
        let err = fx.upload(&[spec], &job_vars(&[]), true).0.unwrap_err();
        assert!(matches!(err, ArtifactStageError::UnsupportedFormat { .. }));
        assert_eq!(
            err.to_string(),
            r#"artifact format "tarzstd" of archive artifacts is not supported"#
        );
    }

    #[test]
    fn a_refused_upload_fails_the_stage_and_stops_there() {
        let fx = Fixture::new();
        tree(&fx);
        let specs = [report("bad/type", "gzip", &["a.txt"]), archive(&["a.txt"])];
        let (result, out) = fx.upload(&specs, &job_vars(&[]), true);
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"uploading bad/type artifacts: invalid artifact type "bad/type""#
        );
        assert_eq!(out.text().matches("Uploading artifacts...").count(), 1);
        assert!(fx.tmp_is_empty());
    }

    fn dependency(id: u64, name: &str, file: Option<&str>) -> Dependency {
        Dependency {
            id,
            name: name.into(),
            token: "t".into(),
            artifacts_file: file.map(|f| ArtifactsFile {
                filename: f.into(),
                size: 1,
            }),
        }
    }

    fn download(fx: &Fixture, deps: Vec<Dependency>) -> (Result<(), ArtifactStageError>, Captured) {
        let payload = JobPayload {
            dependencies: deps,
            ..JobPayload::default()
        };
        let (mut log, out) = captured_log();
        let result = download_artifacts(&payload, &fx.project, &fx.tmp, &fx.transport, &mut log);
        (result, out)
    }

    #[test]
    fn downloads_extract_into_the_project_and_skip_jobs_without_archives() {
        let fx = Fixture::new();
        tree(&fx);
        fx.upload(&[archive(&["sub"])], &job_vars(&[]), true)
            .0
            .unwrap();
        fs::remove_dir_all(&fx.project).unwrap();

        let deps = vec![
            dependency(3, "lint", None),
            dependency(7, "build", Some("artifacts.zip")),
            dependency(4, "test", Some("")),
        ];
        let (result, out) = download(&fx, deps);
        result.unwrap();
        assert_eq!(
            out.lines(),
            [
                "Downloading artifacts for build (7)...",
                "Downloading artifacts from the local store... ok  id=7",
            ]
        );
        assert_eq!(
            fs::read_to_string(fx.project.join("sub/b.txt")).unwrap(),
            "sub/b.txt"
        );
        assert!(fx.tmp_is_empty(), "the downloaded archive is removed");
    }

    #[test]
    fn a_missing_or_corrupt_dependency_archive_fails_the_stage() {
        let fx = Fixture::new();
        let (result, out) = download(&fx, vec![dependency(9, "gone", Some("artifacts.zip"))]);
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "downloading artifacts for gone (9): no artifacts archive for job 9"
        );
        assert!(out.text().contains(&format!("ERROR: {err}")));

        let path = fx.transport.store.archive_path(9);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "not a zip").unwrap();
        let (result, _) = download(&fx, vec![dependency(9, "gone", Some("artifacts.zip"))]);
        assert!(matches!(
            result.unwrap_err(),
            ArtifactStageError::Extract { id: 9, .. }
        ));
        assert!(fx.tmp_is_empty());
    }
}
