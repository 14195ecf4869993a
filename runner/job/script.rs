//! The shell script of one job stage, written the way GitLab Runner's bash
//! shell writes it.
//!
//! Each stage (the user script, `after_script`, ...) is its own shell process:
//! nothing carries over between stages except files, which is why the
//! variables are exported again at the top of every script and why
//! `$GITLAB_ENV` is a file that is re-read at the start of each stage.
//!
//! The script is fed to the shell's standard input, so the stage body runs in
//! a subshell whose stdin is `/dev/null`: a command that reads stdin must not
//! swallow the rest of the script.

/// Which shell language the script is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// bash, with ANSI-C `$'...'` quoting (GitLab Runner's default).
    Bash,
    /// Any POSIX `sh` (dash, busybox): plain `'...'` quoting, for images
    /// without bash.
    Posix,
}

/// One variable exported to the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptVar {
    /// The variable name. Names that are not shell identifiers are skipped,
    /// because `export` would reject them and abort the whole stage.
    pub key: String,
    /// The value, exported byte for byte (a NUL cannot live in the
    /// environment; the shell cuts the value there).
    pub value: String,
    /// A file variable: the value goes into `<tmp_dir>/<key>` and the
    /// variable holds that path.
    pub file: bool,
}

/// Everything needed to write one stage's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    /// The directory the commands run in (`CI_PROJECT_DIR`).
    pub project_dir: String,
    /// The job's private temporary directory: file variables and the
    /// `GITLAB_ENV` file live there.
    pub tmp_dir: String,
    /// Variables, exported in order (a later duplicate wins).
    pub variables: Vec<ScriptVar>,
    /// The commands, run in order; the first failing one ends the stage.
    pub commands: Vec<String>,
    /// The shell language.
    pub dialect: Dialect,
    /// `CI_DEBUG_TRACE`: turn on `set -o xtrace`.
    pub debug_trace: bool,
}

/// The name of the file behind `$GITLAB_ENV`, inside the job's tmp dir.
const GITLAB_ENV_FILE: &str = "gitlab_runner_env";
/// GitLab Runner's colour for echoed commands: bold green, then reset.
const ANSI_BOLD_GREEN: &str = "\x1b[32;1m";
const ANSI_RESET: &str = "\x1b[0;m";

/// Turns pipefail on where the shell has it.
const PIPEFAIL: &str = "if [ -n \"${BASH_VERSION:-}\" ]; then set -o pipefail; \
                        else case \"$(set -o)\" in *\"pipefail\"*) set -o pipefail;; esac; fi\n";

/// The full script for one stage: the wrapper around the stage body.
pub fn generate(spec: &ScriptSpec) -> String {
    let body = body(spec);
    let mut out = String::new();
    // bash exits quietly on SIGTERM instead of printing "Terminated"; the
    // runner's kill sequence relies on it.
    out.push_str("trap 'exit 1' TERM\n");
    if spec.debug_trace {
        out.push_str("set -o xtrace\n");
    }
    // pipefail only where the shell knows it (old dash does not): asking for
    // an unknown option would itself fail the script. Every bash knows it
    // and says it is bash in BASH_VERSION; only other shells are asked, as
    // the `$(...)` costs a fork in every stage.
    out.push_str(PIPEFAIL);
    out.push_str("set -o errexit\n");
    out.push_str("set +o noclobber\n");
    // The body is eval'ed in a subshell so that a user `exit 3` ends only the
    // subshell, whose status errexit then passes on; stdin is /dev/null
    // because the script itself arrives on the shell's stdin.
    out.push_str("( trap 'exit 1' TERM; eval ");
    out.push_str(&single_quote(&body));
    out.push_str(" ) < /dev/null\n");
    out.push_str("exit 0\n");
    out
}

/// The `after_script` stage: the same script, with `CI_JOB_STATUS` set to
/// the job's result so far (`success`, `failed`, `canceled`, `timedout`).
pub fn generate_after_script(spec: &ScriptSpec, job_status: &str) -> String {
    let mut spec = spec.clone();
    spec.variables.retain(|v| v.key != "CI_JOB_STATUS");
    spec.variables.push(ScriptVar {
        key: "CI_JOB_STATUS".to_owned(),
        value: job_status.to_owned(),
        file: false,
    });
    generate(&spec)
}

/// Creates a directory only when it is missing: the runner usually made it
/// already, and `mkdir` is a process to start in every stage.
fn make_dir(quoted: &str) -> String {
    format!("[ -d {quoted} ] || mkdir -p {quoted}\n")
}

/// The stage body: exports, `cd`, then each command echoed and run.
fn body(spec: &ScriptSpec) -> String {
    let q = |s: &str| quote(spec.dialect, s);
    let mut out = String::new();
    let mut tmp_made = false;
    for var in spec.variables.iter().filter(|v| is_identifier(&v.key)) {
        if var.file {
            if !tmp_made {
                out.push_str(&make_dir(&q(&spec.tmp_dir)));
                tmp_made = true;
            }
            let path = q(&join(&spec.tmp_dir, &var.key));
            // Create and restrict the file before the secret goes in, so it
            // is never readable by others, not even for a moment.
            out.push_str(&format!(": > {path}\nchmod 600 {path}\n"));
            out.push_str(&format!("printf '%s' {} > {path}\n", q(&var.value)));
            out.push_str(&format!("export {}={path}\n", var.key));
        } else {
            out.push_str(&format!("export {}={}\n", var.key, q(&var.value)));
        }
    }
    if !tmp_made {
        out.push_str(&make_dir(&q(&spec.tmp_dir)));
    }
    out.push_str(&format!(
        "export GITLAB_ENV={}\n",
        q(&join(&spec.tmp_dir, GITLAB_ENV_FILE))
    ));
    // `: >>` creates the file like `touch` without starting a process.
    out.push_str(": >> \"$GITLAB_ENV\"\n");
    // Lines a previous stage appended as KEY=value; a line that is not a
    // valid assignment is ignored rather than failing the stage. The
    // `|| [ -n ... ]` keeps a last line without its newline.
    out.push_str(
        "while IFS= read -r __runner_env_line || [ -n \"$__runner_env_line\" ]; do \
         export \"$__runner_env_line\" 2>/dev/null || true; done < \"$GITLAB_ENV\"\n",
    );
    out.push_str("unset __runner_env_line\n");
    out.push_str(&format!("cd {}\n", q(&spec.project_dir)));
    for command in &spec.commands {
        let command = command.trim();
        if command.is_empty() {
            out.push_str("echo\n");
        } else {
            // A multi-line command is announced by its first line only.
            let notice = match command.split_once('\n') {
                Some((first, _)) => format!("$ {first} # collapsed multi-line command"),
                None => format!("$ {command}"),
            };
            out.push_str(&notice_line(spec.dialect, &notice));
        }
        out.push_str(command);
        out.push('\n');
    }
    out
}

/// The line that prints `text` in bold green.
fn notice_line(dialect: Dialect, text: &str) -> String {
    let coloured = format!("{ANSI_BOLD_GREEN}{text}{ANSI_RESET}");
    match dialect {
        Dialect::Bash => format!("echo {}\n", quote_bash(&coloured)),
        // dash's `echo` expands backslashes, which would garble commands
        // such as `printf 'a\nb'`; printf prints its argument as is.
        Dialect::Posix => format!("printf '%s\\n' {}\n", quote_posix(&coloured)),
    }
}

fn quote(dialect: Dialect, s: &str) -> String {
    match dialect {
        Dialect::Bash => quote_bash(s),
        Dialect::Posix => quote_posix(s),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A shell identifier: what `export NAME=...` accepts.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Characters that never need quoting, so plain words stay readable.
fn is_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./,:+=@%".contains(&b))
}

/// `s` as one bash word: unchanged when it holds only safe characters,
/// otherwise ANSI-C quoted (`$'...'`) with control characters escaped, so
/// the script stays one line per statement.
pub fn quote_bash(s: &str) -> String {
    if is_safe(s) {
        return s.to_owned();
    }
    if s.is_empty() {
        return "''".to_owned();
    }
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str("$'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            // `\xHH` reads at most two hex digits, so a following digit is
            // safe.
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `s` as one POSIX `sh` word: unchanged when it holds only safe
/// characters, otherwise single-quoted with each `'` written as `'\''`.
pub fn quote_posix(s: &str) -> String {
    if is_safe(s) {
        return s.to_owned();
    }
    single_quote(s)
}

/// Always single-quote (the eval'ed body must be one word even when empty).
fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};

    struct Run {
        code: i32,
        stdout: String,
    }

    /// Feed the script to `shell` on stdin, as the shell executor does.
    fn run_script(shell: &str, script: &str) -> Run {
        let mut child = Command::new(shell)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shell");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write script");
        let out = child.wait_with_output().expect("wait");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }

    fn spec(dir: &Path, dialect: Dialect, vars: Vec<ScriptVar>, cmds: &[&str]) -> ScriptSpec {
        let project = dir.join("project");
        std::fs::create_dir_all(&project).expect("project dir");
        ScriptSpec {
            project_dir: project.to_string_lossy().into_owned(),
            tmp_dir: dir.join("project.tmp").to_string_lossy().into_owned(),
            variables: vars,
            commands: cmds.iter().map(|c| (*c).to_owned()).collect(),
            dialect,
            debug_trace: false,
        }
    }

    fn shell(dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Bash => "bash",
            Dialect::Posix => "sh",
        }
    }

    fn run(dir: &Path, dialect: Dialect, vars: Vec<ScriptVar>, cmds: &[&str]) -> Run {
        run_script(shell(dialect), &generate(&spec(dir, dialect, vars, cmds)))
    }

    fn var(key: &str, value: &str) -> ScriptVar {
        ScriptVar {
            key: key.into(),
            value: value.into(),
            file: false,
        }
    }

    const BOTH: [Dialect; 2] = [Dialect::Bash, Dialect::Posix];

    #[test]
    fn wrapper_matches_gitlab_runner_layout() {
        let s = ScriptSpec {
            project_dir: "/builds/p".into(),
            tmp_dir: "/builds/p.tmp".into(),
            variables: vec![],
            commands: vec!["make".into()],
            dialect: Dialect::Bash,
            debug_trace: true,
        };
        let script = generate(&s);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "trap 'exit 1' TERM");
        assert_eq!(lines[1], "set -o xtrace");
        assert_eq!(lines[2], PIPEFAIL.trim_end());
        assert_eq!(lines[3], "set -o errexit");
        assert_eq!(lines[4], "set +o noclobber");
        assert!(lines[5].starts_with("( trap 'exit 1' TERM; eval '"));
        assert!(script.ends_with(" ) < /dev/null\nexit 0\n"));
        let body = body(&s);
        assert!(body.contains("cd /builds/p\necho $'\\e[32;1m$ make\\e[0;m'\nmake\n"));
    }

    #[test]
    fn commands_are_echoed_then_run() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let r = run(dir.path(), d, vec![], &["echo hi", "", "  echo 'x y'  "]);
            assert_eq!(r.code, 0, "{d:?}");
            assert_eq!(
                r.stdout,
                "\x1b[32;1m$ echo hi\x1b[0;m\nhi\n\n\x1b[32;1m$ echo 'x y'\x1b[0;m\nx y\n",
                "{d:?}"
            );
        }
    }

    #[test]
    fn multi_line_command_is_announced_by_first_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = run(dir.path(), Dialect::Bash, vec![], &["echo a\necho b"]);
        assert_eq!(r.code, 0);
        assert_eq!(
            r.stdout,
            "\x1b[32;1m$ echo a # collapsed multi-line command\x1b[0;m\na\nb\n"
        );
    }

    #[test]
    fn runs_in_project_dir() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let r = run(dir.path(), d, vec![], &["pwd > where"]);
            assert_eq!(r.code, 0);
            let got = std::fs::read_to_string(dir.path().join("project/where")).expect("where");
            assert!(got.trim_end().ends_with("/project"), "{got}");
        }
    }

    #[test]
    fn first_failure_stops_with_its_code() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let r = run(dir.path(), d, vec![], &["false", "echo never"]);
            assert_eq!(r.code, 1, "{d:?}");
            assert!(!r.stdout.contains("never\n"), "{d:?}: {}", r.stdout);
            let r = run(dir.path(), d, vec![], &["exit 3", "echo never"]);
            assert_eq!(r.code, 3, "{d:?}");
            let r = run(dir.path(), d, vec![], &["sh -c 'exit 42'"]);
            assert_eq!(r.code, 42, "{d:?}");
        }
    }

    #[test]
    fn pipefail_in_bash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = run(
            dir.path(),
            Dialect::Bash,
            vec![],
            &["false | true", "echo never"],
        );
        assert_eq!(r.code, 1);
        assert!(!r.stdout.contains("never\n"));
    }

    #[test]
    fn stdin_is_dev_null() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            // Were stdin the script itself, `read` would eat the next line.
            let r = run(
                dir.path(),
                d,
                vec![],
                &["if read x; then echo got; else echo eof; fi"],
            );
            assert_eq!(r.code, 0);
            assert!(r.stdout.ends_with("eof\n"), "{d:?}: {}", r.stdout);
            let r = run(dir.path(), d, vec![], &["read x", "echo never"]);
            assert_eq!(r.code, 1, "{d:?}");
        }
    }

    #[test]
    fn noclobber_is_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = run(
            dir.path(),
            Dialect::Bash,
            vec![],
            &["echo a > f", "echo b > f"],
        );
        assert_eq!(r.code, 0);
    }

    const AWKWARD: &[&str] = &[
        "",
        "plain",
        "it's \"quoted\"",
        "line1\nline2\n",
        "$HOME `id` $(id) ${X}",
        "back\\slash\\n \\\\",
        "ünïcödé ✓ 日本",
        "tab\there\r\x1b[0m\x07\x7f",
        "'",
        "a'b\\'c",
        "-n",
        "*",
    ];

    #[test]
    fn variables_round_trip_exactly() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let vars = AWKWARD
                .iter()
                .enumerate()
                .map(|(i, v)| var(&format!("V{i}"), v))
                .collect();
            let cmds: Vec<String> = (0..AWKWARD.len())
                .map(|i| format!("printf '%s' \"$V{i}\" > out{i}"))
                .collect();
            let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
            let r = run(dir.path(), d, vars, &cmds);
            assert_eq!(r.code, 0, "{d:?}");
            for (i, want) in AWKWARD.iter().enumerate() {
                let got = std::fs::read(dir.path().join(format!("project/out{i}"))).expect("out");
                assert_eq!(String::from_utf8_lossy(&got), *want, "{d:?} V{i}");
            }
        }
    }

    #[test]
    fn later_duplicate_wins_and_bad_keys_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vars = vec![var("A", "1"), var("bad-key", "x"), var("A", "2")];
        let r = run(dir.path(), Dialect::Bash, vars, &["test \"$A\" = 2"]);
        assert_eq!(r.code, 0);
    }

    #[test]
    fn file_variables_are_private_files() {
        use std::os::unix::fs::PermissionsExt;
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let secret = "key's \"body\"\n$X\\n ✓\n";
            let vars = vec![ScriptVar {
                key: "SECRET".into(),
                value: secret.into(),
                file: true,
            }];
            let r = run(dir.path(), d, vars, &["printf '%s' \"$SECRET\" > path"]);
            assert_eq!(r.code, 0, "{d:?}");
            let path = std::fs::read_to_string(dir.path().join("project/path")).expect("path");
            let want = dir.path().join("project.tmp/SECRET");
            assert_eq!(Path::new(&path), want);
            assert_eq!(std::fs::read_to_string(&want).expect("secret"), secret);
            let mode = std::fs::metadata(&want).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{d:?}");
        }
    }

    #[test]
    fn gitlab_env_carries_to_the_next_stage_only() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let first = run(
                dir.path(),
                d,
                vec![],
                &[
                    "echo 'FROM_JOB=a b $c' >> \"$GITLAB_ENV\"",
                    "printf 'NOEOL=x' >> \"$GITLAB_ENV\"",
                    "test -z \"${FROM_JOB:-}\"",
                ],
            );
            assert_eq!(
                first.code, 0,
                "{d:?}: within a stage the file is not re-read"
            );
            let second = run(
                dir.path(),
                d,
                vec![],
                &["printf '%s|%s' \"$FROM_JOB\" \"$NOEOL\" > got"],
            );
            assert_eq!(second.code, 0, "{d:?}");
            let got = std::fs::read_to_string(dir.path().join("project/got")).expect("got");
            assert_eq!(got, "a b $c|x", "{d:?}");
        }
    }

    #[test]
    fn gitlab_env_ignores_junk_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join("project.tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        std::fs::write(
            tmp.join(GITLAB_ENV_FILE),
            "\n1BAD=x\nnot an assignment\nOK=1\n",
        )
        .expect("env");
        let r = run(dir.path(), Dialect::Bash, vec![], &["test \"$OK\" = 1"]);
        assert_eq!(r.code, 0);
    }

    #[test]
    fn after_script_sees_job_status() {
        for d in BOTH {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = spec(
                dir.path(),
                d,
                vec![var("CI_JOB_STATUS", "running"), var("K", "v")],
                &["printf '%s %s' \"$CI_JOB_STATUS\" \"$K\" > st"],
            );
            let r = run_script(shell(d), &generate_after_script(&s, "failed"));
            assert_eq!(r.code, 0);
            let got = std::fs::read_to_string(dir.path().join("project/st")).expect("st");
            assert_eq!(got, "failed v");
        }
    }

    #[test]
    fn quoting_leaves_safe_words_alone() {
        assert_eq!(quote_bash("a/b-c_1.2:x=y@z%,+"), "a/b-c_1.2:x=y@z%,+");
        assert_eq!(quote_bash(""), "''");
        assert_eq!(quote_bash("a b"), "$'a b'");
        assert_eq!(quote_bash("it's\n"), "$'it\\'s\\n'");
        assert_eq!(quote_posix(""), "''");
        assert_eq!(quote_posix("it's"), "'it'\\''s'");
    }

    mod roundtrip {
        use super::*;
        use proptest::prelude::*;

        fn awkward_string() -> impl Strategy<Value = String> {
            let special = prop::sample::select(vec![
                '\'', '"', '\\', '$', '`', '\n', '\t', '\r', '\x1b', '\x01', '\x7f', ' ', '!', '*',
                '?', '{', '}', 'x', '0', 'é', '✓',
            ]);
            let ch = prop_oneof![special, any::<char>().prop_filter("no NUL", |c| *c != '\0')];
            prop::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
        }

        fn echo_back(shell: &str, quoted: &str) -> Vec<u8> {
            let out = Command::new(shell)
                .arg("-c")
                .arg(format!("printf '%s' {quoted}"))
                .output()
                .expect("run shell");
            assert!(out.status.success(), "{quoted}");
            out.stdout
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn quote_bash_round_trips(s in awkward_string()) {
                prop_assert_eq!(echo_back("bash", &quote_bash(&s)), s.as_bytes());
            }

            #[test]
            fn quote_posix_round_trips(s in awkward_string()) {
                prop_assert_eq!(echo_back("sh", &quote_posix(&s)), s.as_bytes());
            }
        }
    }
}
