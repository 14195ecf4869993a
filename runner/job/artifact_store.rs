//! Artifacts kept in a local directory, for jobs run without GitLab: each
//! job's archive at `<root>/<job id>/artifacts.zip`, each report at
//! `<root>/<job id>/<artifact type>.<ext>`. Later jobs of the pipeline
//! download archives from here and take variables from dotenv reports.
//!
//! Files are written under a temporary name and renamed into place, so a
//! reader never sees half an archive, even when an upload fails midway.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use crate::archive::{DotenvLimits, parse_dotenv};

use super::artifacts_stage::{ArtifactFormat, ArtifactTransport, ArtifactUpload, TransportError};
use super::payload::{ArtifactsFile, Dependency};

/// The file name of a job's archive in the store.
const ARCHIVE_FILE: &str = "artifacts.zip";

/// A directory of job artifacts.
#[derive(Clone, Debug)]
pub struct LocalArtifactStore {
    pub root: PathBuf,
}

impl LocalArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalArtifactStore { root: root.into() }
    }

    fn job_dir(&self, job_id: u64) -> PathBuf {
        self.root.join(job_id.to_string())
    }

    /// Where the archive (`artifact_type` `archive`) of `job_id` is kept.
    pub fn archive_path(&self, job_id: u64) -> PathBuf {
        self.job_dir(job_id).join(ARCHIVE_FILE)
    }

    /// The job's archive as a dependent job's payload names it, if the job
    /// uploaded one.
    pub fn has_archive(&self, job_id: u64) -> Option<ArtifactsFile> {
        let meta = fs::metadata(self.archive_path(job_id)).ok()?;
        meta.is_file().then(|| ArtifactsFile {
            filename: ARCHIVE_FILE.to_owned(),
            size: meta.len(),
        })
    }

    /// The variables of the job's dotenv report, read with GitLab's rules
    /// and limits; none when the job uploaded no such report.
    pub fn dotenv_variables(&self, job_id: u64) -> Result<Vec<(String, String)>, TransportError> {
        let path = self.job_dir(job_id).join("dotenv.gz");
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io_error("open", &path, source)),
        };
        let limits = DotenvLimits::default();
        // One byte past the limit is enough for the parser to refuse a
        // report that is too big; a gzip bomb is never inflated further.
        let mut content = Vec::new();
        MultiGzDecoder::new(BufReader::new(file))
            .take(limits.max_bytes as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|source| io_error("read", &path, source))?;
        parse_dotenv(&content, &limits).map_err(|source| TransportError::Dotenv { job_id, source })
    }

    /// Where an upload goes: the archive under its fixed name, a report
    /// under its type.
    fn destination(&self, upload: &ArtifactUpload<'_>) -> Result<PathBuf, TransportError> {
        let kind = upload.artifact_type;
        if kind == "archive" {
            return Ok(self.archive_path(upload.job_id));
        }
        // The type becomes a file name: keep it to what GitLab's types are.
        let simple = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !simple(kind) {
            return Err(TransportError::Refused(format!(
                "invalid artifact type {kind:?}"
            )));
        }
        let ext = match upload.format {
            ArtifactFormat::Zip => "zip",
            ArtifactFormat::Gzip => "gz",
            ArtifactFormat::Raw => Path::new(upload.file_name)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| simple(e))
                .unwrap_or("raw"),
        };
        Ok(self.job_dir(upload.job_id).join(format!("{kind}.{ext}")))
    }
}

impl ArtifactTransport for LocalArtifactStore {
    fn upload(&self, upload: &ArtifactUpload<'_>) -> Result<String, TransportError> {
        let dest = self.destination(upload)?;
        copy_atomically(upload.archive, &dest)?;
        Ok(format!(
            "Uploading artifacts as {:?} to the local store... ok  id={}",
            upload.artifact_type, upload.job_id
        ))
    }

    fn download(&self, dependency: &Dependency, dest: &Path) -> Result<String, TransportError> {
        let source = self.archive_path(dependency.id);
        if !source.is_file() {
            return Err(TransportError::NotFound {
                job_id: dependency.id,
            });
        }
        fs::copy(&source, dest).map_err(|e| io_error("copy", &source, e))?;
        Ok(format!(
            "Downloading artifacts from the local store... ok  id={}",
            dependency.id
        ))
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> TransportError {
    TransportError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Copies `src` to `dest` through a temporary file beside `dest`, which is
/// removed if anything fails.
fn copy_atomically(src: &Path, dest: &Path) -> Result<(), TransportError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.{}.{n}.partial", std::process::id()));
    let result = (|| {
        let mut input = File::open(src).map_err(|e| io_error("open", src, e))?;
        let mut output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| io_error("create", &temp, e))?;
        io::copy(&mut input, &mut output).map_err(|e| io_error("write", &temp, e))?;
        fs::rename(&temp, dest).map_err(|e| io_error("replace", dest, e))
    })();
    if result.is_err() {
        // The error above is what matters; a leftover is only clutter.
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::artifacts_stage::{download_artifacts, upload_artifacts};
    use crate::job::cache_stage::tests::{captured_log, job_vars, write};
    use crate::job::payload::{ArtifactSpec, JobPayload};
    use std::collections::BTreeMap;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// Per path below `root`: kind, permission bits, content or link text.
    fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
        walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap();
                let meta = e.path().symlink_metadata().unwrap();
                let mode = meta.permissions().mode() & 0o777;
                let state = if meta.file_type().is_symlink() {
                    let target = fs::read_link(e.path()).unwrap();
                    ('l', 0, target.into_os_string().into_encoded_bytes())
                } else if meta.is_dir() {
                    ('d', mode, Vec::new())
                } else {
                    ('f', mode, fs::read(e.path()).unwrap())
                };
                (rel.to_string_lossy().into_owned(), state)
            })
            .collect()
    }

    fn upload(store: &LocalArtifactStore, job_id: u64, project: &Path, specs: &[ArtifactSpec]) {
        let payload = JobPayload {
            id: job_id,
            artifacts: specs.to_vec(),
            ..JobPayload::default()
        };
        let (mut log, out) = captured_log();
        let tmp = project.with_extension("tmp");
        upload_artifacts(
            &payload,
            &job_vars(&[]),
            project,
            &tmp,
            store,
            true,
            &mut log,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", out.text()));
    }

    fn spec(kind: &str, format: &str, paths: &[&str]) -> ArtifactSpec {
        ArtifactSpec {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            artifact_type: kind.into(),
            artifact_format: format.into(),
            when: Some("always".into()),
            ..ArtifactSpec::default()
        }
    }

    #[test]
    fn an_upload_downloads_into_another_project_with_modes_and_links() {
        let dirs = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dirs.path().join("store"));
        let first = dirs.path().join("first");
        write(&first, "dist/bin/tool", "#!/bin/sh\necho hi\n");
        write(&first, "dist/data/readme.txt", "data");
        write(&first, "dist/private.key", "k");
        fs::set_permissions(
            first.join("dist/bin/tool"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::set_permissions(
            first.join("dist/private.key"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        fs::set_permissions(first.join("dist/data"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("bin/tool", first.join("dist/current")).unwrap();
        symlink("../../elsewhere", first.join("dist/data/dangling")).unwrap();
        upload(&store, 41, &first, &[spec("archive", "zip", &["dist"])]);
        let stored = store.has_archive(41).expect("archive stored");
        assert_eq!(stored.filename, "artifacts.zip");
        assert_eq!(
            stored.size,
            fs::metadata(store.archive_path(41)).unwrap().len()
        );

        let second = dirs.path().join("second");
        fs::create_dir_all(&second).unwrap();
        let payload = JobPayload {
            dependencies: vec![Dependency {
                id: 41,
                name: "build".into(),
                artifacts_file: Some(stored),
                ..Dependency::default()
            }],
            ..JobPayload::default()
        };
        let (mut log, _) = captured_log();
        let tmp = dirs.path().join("second.tmp");
        download_artifacts(&payload, &second, &tmp, &store, &mut log).unwrap();
        assert_eq!(snapshot(&second), snapshot(&first));
        assert!(
            fs::symlink_metadata(second.join("dist/current"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn rule_214_a_dotenv_report_becomes_variables_for_later_jobs() {
        let dirs = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dirs.path().join("store"));
        let project = dirs.path().join("project");
        write(
            &project,
            "build.env",
            "VERSION=1.2.3\nURL = \"https://x\" \nVERSION=1.2.4\n",
        );
        let mut dotenv = spec("dotenv", "gzip", &["build.env"]);
        dotenv.name = Some(".env".into());
        upload(&store, 5, &project, &[dotenv.clone()]);
        assert!(store.root.join("5/dotenv.gz").is_file());
        assert_eq!(
            store.dotenv_variables(5).unwrap(),
            [
                ("VERSION".to_owned(), "1.2.4".to_owned()),
                ("URL".to_owned(), "\"https://x\"".to_owned())
            ]
        );
        // A job without the report hands over nothing.
        assert!(store.dotenv_variables(6).unwrap().is_empty());

        write(&project, "build.env", "# comment\n");
        upload(&store, 8, &project, &[dotenv]);
        let err = store.dotenv_variables(8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dotenv report of job 8: dotenv line 1: Invalid Format"
        );
    }

    #[test]
    fn an_oversized_dotenv_report_is_refused_without_inflating_it() {
        let dirs = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dirs.path());
        let project = dirs.path().join("project");
        write(&project, "big.env", &"A=1\n".repeat(1 << 20));
        upload(&store, 1, &project, &[spec("dotenv", "gzip", &["big.env"])]);
        let err = store.dotenv_variables(1).unwrap_err();
        assert!(err.to_string().contains("Dotenv Artifact Too Big"), "{err}");
    }

    #[test]
    fn reports_are_kept_under_their_type() {
        let dirs = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dirs.path().join("store"));
        let project = dirs.path().join("project");
        write(&project, "junit.xml", "<x/>");
        write(&project, "gl-sast-report.json", "{}");
        let mut sast = spec("sast", "raw", &["gl-sast-report.json"]);
        sast.name = Some("gl-sast-report.json".into());
        upload(
            &store,
            2,
            &project,
            &[
                spec("junit", "gzip", &["junit.xml"]),
                sast,
                spec("lsif", "zip", &["junit.xml"]),
            ],
        );
        let mut names: Vec<String> = fs::read_dir(store.root.join("2"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["junit.gz", "lsif.zip", "sast.json"]);
        assert_eq!(fs::read(store.root.join("2/sast.json")).unwrap(), b"{}");
        assert!(
            store.has_archive(2).is_none(),
            "reports are not the archive"
        );
    }

    #[test]
    fn a_failed_store_leaves_no_partial_file() {
        let dirs = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dirs.path().join("store"));
        let source = dirs.path().join("packed.zip");
        fs::write(&source, "zip bytes").unwrap();
        // A directory in the archive's place: the final rename fails.
        fs::create_dir_all(store.archive_path(3).join("occupied")).unwrap();
        let upload = ArtifactUpload {
            job_id: 3,
            job_token: "",
            artifact_type: "archive",
            format: ArtifactFormat::Zip,
            file_name: "artifacts.zip",
            expire_in: None,
            archive: &source,
        };
        let err = store.upload(&upload).unwrap_err();
        assert!(err.to_string().starts_with("cannot replace"), "{err}");
        let left: Vec<_> = fs::read_dir(store.root.join("3"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["artifacts.zip"]);
        assert!(store.has_archive(3).is_none());
    }
}
