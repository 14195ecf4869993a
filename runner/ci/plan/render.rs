//! `runner plan` as text: one line per job under its stage, then the jobs
//! left out and why.
//!
//! ```text
//! pipeline for main (push) — workflow: rule 1 if: $CI_COMMIT_BRANCH
//!
//! build
//!   compile        on_success                       image ruby:3.3   default: no rules
//! test
//!   rspec 1/2      on_success  needs compile         image ruby:3.3   rule 1: if: $CI_COMMIT_BRANCH
//!   lint           manual, may fail
//!
//! skipped
//!   deploy         no rule matched
//! ```

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::plan_types::{DecidedBy, DecisionKind, Plan, PlannedJob};
use crate::ci::model::when::When;

/// Renders `plan` for a terminal. With `color`, stage names are bold,
/// manual and delayed jobs yellow, trigger jobs cyan and skipped jobs dim.
pub fn render_text(plan: &Plan, color: bool) -> String {
    let paint = |style: Style, text: &str| -> String {
        if color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    };
    let bold = Style::new().bold();
    let dim = Style::new().dimmed();
    let yellow = AnsiColor::Yellow.on_default();
    let cyan = AnsiColor::Cyan.on_default();
    let red = AnsiColor::Red.on_default().bold();

    let mut out = String::new();
    let name = plan
        .workflow
        .name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}{name} for {} ({}) — workflow: {}",
        paint(bold, "pipeline"),
        if plan.git_ref.is_empty() {
            "?"
        } else {
            &plan.git_ref
        },
        plan.pipeline_source,
        decision_text(&plan.workflow.decided_by),
    );
    if !plan.created {
        let reason = plan.reason.as_deref().unwrap_or("no pipeline");
        let _ = writeln!(out, "{}", paint(red, &format!("not created: {reason}")));
    }

    let width = plan
        .jobs
        .iter()
        .map(|j| j.name.chars().count())
        .chain(plan.skipped.iter().map(|s| s.name.chars().count()))
        .max()
        .unwrap_or(0);
    let columns: Vec<[String; 3]> = plan.jobs.iter().map(job_columns).collect();
    let when_width = columns
        .iter()
        .map(|c| c[0].chars().count())
        .max()
        .unwrap_or(0);
    let needs_width = columns
        .iter()
        .map(|c| c[1].chars().count())
        .max()
        .unwrap_or(0);
    let image_width = columns
        .iter()
        .map(|c| c[2].chars().count())
        .max()
        .unwrap_or(0);

    for stage in &plan.stages {
        let _ = writeln!(out, "\n{}", paint(bold, &stage.name));
        for job_name in &stage.jobs {
            let Some(pos) = plan.jobs.iter().position(|j| &j.name == job_name) else {
                continue;
            };
            let job = &plan.jobs[pos];
            let [when, needs, image] = &columns[pos];
            let when_style = match job.when {
                When::Manual | When::Delayed => Some(yellow),
                _ if job.trigger => Some(cyan),
                _ => None,
            };
            let when_cell = format!("{when:<when_width$}");
            let mut cells = vec![
                format!("{:<width$}", job.name),
                match when_style {
                    Some(style) => paint(style, &when_cell),
                    None => when_cell,
                },
            ];
            // Columns no job uses are left out instead of padded.
            if needs_width > 0 {
                cells.push(format!("{needs:<needs_width$}"));
            }
            if image_width > 0 {
                cells.push(format!("{image:<image_width$}"));
            }
            cells.push(paint(dim, &decision_text(&job.decided_by)));
            let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
        }
    }

    if !plan.skipped.is_empty() {
        let _ = writeln!(out, "\n{}", paint(bold, "skipped"));
        for job in &plan.skipped {
            let line = format!("  {:<width$}  {}", job.name, job.reason);
            let _ = writeln!(out, "{}", paint(dim, line.trim_end()));
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n{}", paint(bold, "warnings"));
        for warning in &plan.warnings {
            let _ = writeln!(out, "  {}", paint(yellow, warning));
        }
    }
    out
}

/// The `when`, `needs` and `image` columns of a job line.
fn job_columns(job: &PlannedJob) -> [String; 3] {
    let mut when = job.when.as_str().to_string();
    if let Some(start_in) = &job.start_in {
        let _ = write!(when, " {start_in}");
    }
    if job.trigger {
        when.push_str(", trigger");
    }
    if job.allow_failure {
        when.push_str(", may fail");
    } else if let Some(codes) = &job.allow_failure_exit_codes {
        let codes: Vec<String> = codes.iter().map(i64::to_string).collect();
        let _ = write!(when, ", may fail with {}", codes.join("/"));
    }
    let needs = match &job.needs {
        None => String::new(),
        Some(needs) if needs.is_empty() => "needs nothing".to_string(),
        Some(needs) => {
            let names: Vec<String> = needs
                .iter()
                .map(|n| {
                    let mut name = n.job.clone();
                    if n.optional {
                        name.push('?');
                    }
                    name
                })
                .collect();
            format!("needs {}", names.join(", "))
        }
    };
    let image = job
        .image
        .as_deref()
        .map(|i| format!("image {i}"))
        .unwrap_or_default();
    [when, needs, image]
}

/// `rule 2: if: $X`, `only/except: only: [branches, tags]`, or the default.
pub(crate) fn decision_text(decided: &DecidedBy) -> String {
    match (decided.kind, decided.index) {
        (DecisionKind::Rule, Some(i)) => format!("rule {}: {}", i + 1, decided.text),
        (DecisionKind::Rule, None) => format!("rule: {}", decided.text),
        (DecisionKind::OnlyExcept, _) => decided.text.clone(),
        (DecisionKind::Default, _) => decided.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::render_text;

    const PIPELINE: &str = r#"
stages: [build, test, deploy]
compile:
  stage: build
  image: ruby:3.3
  script: make
rspec:
  stage: test
  parallel: 2
  needs: [compile]
  script: rspec
lint:
  stage: test
  when: manual
  script: lint
deploy:
  stage: deploy
  script: deploy
  rules:
    - if: $CI_COMMIT_TAG
"#;

    #[test]
    fn text_lists_stages_jobs_and_skipped_jobs() {
        let plan = plan_of(PIPELINE, &ctx("push", &[]));
        let text = render_text(&plan, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "pipeline for main (push) — workflow: no workflow:rules"
        );
        let compile = lines
            .iter()
            .find(|l| l.trim_start().starts_with("compile"))
            .unwrap();
        assert!(
            compile.contains("on_success") && compile.contains("image ruby:3.3"),
            "{compile}"
        );
        let rspec = lines.iter().find(|l| l.contains("rspec 2/2")).unwrap();
        assert!(rspec.contains("needs compile"), "{rspec}");
        let lint = lines
            .iter()
            .find(|l| l.trim_start().starts_with("lint"))
            .unwrap();
        assert!(lint.contains("manual, may fail"), "{lint}");
        let stages: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.starts_with(' ') && !l.is_empty())
            .collect();
        assert_eq!(&stages[1..], ["build", "test", "skipped"]);
        let deploy = lines.last().unwrap();
        assert!(
            deploy.starts_with("  deploy ") && deploy.ends_with(" no rule matched"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn color_marks_stages_and_manual_jobs() {
        let plan = plan_of(PIPELINE, &ctx("push", &[]));
        let text = render_text(&plan, true);
        assert!(text.contains("\x1b[1mbuild\x1b[0m"), "{text:?}");
        assert!(text.contains("\x1b[33mmanual, may fail"), "{text:?}");
    }

    #[test]
    fn a_pipeline_that_is_not_created_says_why() {
        let yaml = "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\njob:\n  script: x\n";
        let text = render_text(&plan_of(yaml, &ctx("push", &[])), false);
        assert!(
            text.contains("not created: Pipeline filtered out by workflow rules."),
            "{text}"
        );
    }
}
