//! The agent's Prometheus metrics, under gitlab-runner's names so that
//! existing dashboards and alerts keep working.
//!
//! Few series and few updates (a handful per job and per request), so one
//! mutex around plain maps is simpler than a metrics crate and costs
//! nothing measurable. Rendering writes the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// gitlab-runner's buckets for `gitlab_runner_job_duration_seconds`.
const JOB_DURATION_BUCKETS: [f64; 10] = [
    30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 18000.0, 36000.0,
];

/// Who a series is about: the labels gitlab-runner puts on per-runner
/// series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunnerLabels {
    /// The short token.
    pub runner: String,
    pub runner_name: String,
    pub system_id: String,
}

impl RunnerLabels {
    fn render(&self) -> String {
        format!(
            "runner=\"{}\",runner_name=\"{}\",system_id=\"{}\"",
            escape(&self.runner),
            escape(&self.runner_name),
            escape(&self.system_id)
        )
    }
}

#[derive(Debug, Default)]
struct RunnerSeries {
    limit: u32,
    request_concurrency: u32,
    running: u64,
    jobs_total: u64,
    failed: BTreeMap<String, u64>,
    request_concurrency_exceeded: u64,
    durations: Histogram,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; JOB_DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in JOB_DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Inner {
    concurrent: u32,
    runners: BTreeMap<RunnerLabels, RunnerSeries>,
    /// (runner labels, endpoint, method, status) → count.
    api_requests: BTreeMap<(RunnerLabels, String, String, String), u64>,
    errors: BTreeMap<&'static str, u64>,
    config_loaded: u64,
    config_loading_errors: u64,
}

/// Every metric of the agent.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings a (re)loaded configuration gives.
    pub fn configured(&self, concurrent: u32, runners: &[(RunnerLabels, u32, u32)]) {
        let mut inner = self.lock();
        inner.concurrent = concurrent;
        inner.config_loaded += 1;
        for (labels, limit, request_concurrency) in runners {
            let series = inner.runners.entry(labels.clone()).or_default();
            series.limit = *limit;
            series.request_concurrency = *request_concurrency;
        }
    }

    pub fn config_load_failed(&self) {
        self.lock().config_loading_errors += 1;
    }

    pub fn job_started(&self, runner: &RunnerLabels) {
        let mut inner = self.lock();
        let series = inner.runners.entry(runner.clone()).or_default();
        series.running += 1;
        series.jobs_total += 1;
    }

    /// A job ended; `failure_reason` is what was reported, if it failed.
    pub fn job_finished(
        &self,
        runner: &RunnerLabels,
        duration: Duration,
        failure_reason: Option<&str>,
    ) {
        let mut inner = self.lock();
        let series = inner.runners.entry(runner.clone()).or_default();
        series.running = series.running.saturating_sub(1);
        series.durations.observe(duration.as_secs_f64());
        if let Some(reason) = failure_reason {
            *series.failed.entry(reason.to_owned()).or_default() += 1;
        }
    }

    pub fn request_concurrency_exceeded(&self, runner: &RunnerLabels) {
        let mut inner = self.lock();
        inner
            .runners
            .entry(runner.clone())
            .or_default()
            .request_concurrency_exceeded += 1;
    }

    /// One answer of the GitLab API (`status` is the HTTP code, or
    /// `error` when there was no answer).
    pub fn api_request(&self, runner: &RunnerLabels, endpoint: &str, method: &str, status: &str) {
        let mut inner = self.lock();
        *inner
            .api_requests
            .entry((
                runner.clone(),
                endpoint.to_owned(),
                method.to_owned(),
                status.to_owned(),
            ))
            .or_default() += 1;
    }

    /// A log line of `level` (`warning`, `error`) was written.
    pub fn logged(&self, level: &'static str) {
        *self.lock().errors.entry(level).or_default() += 1;
    }

    /// The text exposition of every series, process metrics included.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        family(
            &mut out,
            "gitlab_runner_version_info",
            "gauge",
            "The runner's version.",
        );
        let _ = writeln!(
            out,
            "gitlab_runner_version_info{{name=\"runner\",version=\"{}\",os=\"{}\",architecture=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        );
        family(
            &mut out,
            "gitlab_runner_concurrent",
            "gauge",
            "The `concurrent` setting.",
        );
        let _ = writeln!(out, "gitlab_runner_concurrent {}", inner.concurrent);

        family(
            &mut out,
            "gitlab_runner_limit",
            "gauge",
            "The `limit` setting of each runner.",
        );
        for (l, s) in &inner.runners {
            let _ = writeln!(out, "gitlab_runner_limit{{{}}} {}", l.render(), s.limit);
        }
        family(
            &mut out,
            "gitlab_runner_request_concurrency",
            "gauge",
            "The `request_concurrency` setting of each runner.",
        );
        for (l, s) in &inner.runners {
            let _ = writeln!(
                out,
                "gitlab_runner_request_concurrency{{{}}} {}",
                l.render(),
                s.request_concurrency
            );
        }
        family(
            &mut out,
            "gitlab_runner_request_concurrency_exceeded_total",
            "counter",
            "Requests not sent because request_concurrency was reached.",
        );
        for (l, s) in &inner.runners {
            let _ = writeln!(
                out,
                "gitlab_runner_request_concurrency_exceeded_total{{{}}} {}",
                l.render(),
                s.request_concurrency_exceeded
            );
        }
        family(&mut out, "gitlab_runner_jobs", "gauge", "Jobs running now.");
        for (l, s) in &inner.runners {
            let _ = writeln!(
                out,
                "gitlab_runner_jobs{{{},state=\"running\"}} {}",
                l.render(),
                s.running
            );
        }
        family(
            &mut out,
            "gitlab_runner_jobs_total",
            "counter",
            "Jobs started.",
        );
        for (l, s) in &inner.runners {
            let _ = writeln!(
                out,
                "gitlab_runner_jobs_total{{{}}} {}",
                l.render(),
                s.jobs_total
            );
        }
        family(
            &mut out,
            "gitlab_runner_failed_jobs_total",
            "counter",
            "Failed jobs, by the failure reason reported.",
        );
        for (l, s) in &inner.runners {
            for (reason, n) in &s.failed {
                let _ = writeln!(
                    out,
                    "gitlab_runner_failed_jobs_total{{{},failure_reason=\"{}\"}} {n}",
                    l.render(),
                    escape(reason)
                );
            }
        }
        family(
            &mut out,
            "gitlab_runner_job_duration_seconds",
            "histogram",
            "How long jobs ran.",
        );
        for (l, s) in &inner.runners {
            let labels = l.render();
            for (bound, n) in JOB_DURATION_BUCKETS.iter().zip(s.durations.counts) {
                let _ = writeln!(
                    out,
                    "gitlab_runner_job_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "gitlab_runner_job_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.durations.count
            );
            let _ = writeln!(
                out,
                "gitlab_runner_job_duration_seconds_sum{{{labels}}} {}",
                s.durations.sum
            );
            let _ = writeln!(
                out,
                "gitlab_runner_job_duration_seconds_count{{{labels}}} {}",
                s.durations.count
            );
        }
        family(
            &mut out,
            "gitlab_runner_api_request_statuses_total",
            "counter",
            "Answers of the GitLab API, by endpoint, method and status.",
        );
        for ((l, endpoint, method, status), n) in &inner.api_requests {
            let _ = writeln!(
                out,
                "gitlab_runner_api_request_statuses_total{{{},endpoint=\"{}\",method=\"{}\",status=\"{}\"}} {n}",
                l.render(),
                escape(endpoint),
                escape(method),
                escape(status)
            );
        }
        family(
            &mut out,
            "gitlab_runner_errors_total",
            "counter",
            "Warning and error log lines, by level.",
        );
        for level in ["warning", "error"] {
            let n = inner.errors.get(level).copied().unwrap_or(0);
            let _ = writeln!(out, "gitlab_runner_errors_total{{level=\"{level}\"}} {n}");
        }
        family(
            &mut out,
            "gitlab_runner_configuration_loaded_total",
            "counter",
            "Configuration loads that succeeded.",
        );
        let _ = writeln!(
            out,
            "gitlab_runner_configuration_loaded_total {}",
            inner.config_loaded
        );
        family(
            &mut out,
            "gitlab_runner_configuration_loading_error_total",
            "counter",
            "Configuration loads that failed.",
        );
        let _ = writeln!(
            out,
            "gitlab_runner_configuration_loading_error_total {}",
            inner.config_loading_errors
        );
        drop(inner);
        out.push_str(&super::process_metrics::render());
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> RunnerLabels {
        RunnerLabels {
            runner: "abcdefghi".into(),
            runner_name: "host \"one\"".into(),
            system_id: "s_0123456789ab".into(),
        }
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn job_counts_durations_and_failures_render_under_gitlab_runner_names() {
        let m = Metrics::new();
        let l = labels();
        m.configured(4, &[(l.clone(), 2, 1)]);
        m.job_started(&l);
        m.job_started(&l);
        m.job_finished(&l, Duration::from_secs(45), None);
        let text = m.render();
        let sel = l.render();
        assert_eq!(value(&text, "gitlab_runner_concurrent"), Some(4.0));
        assert_eq!(
            value(&text, &format!("gitlab_runner_limit{{{sel}}}")),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("gitlab_runner_jobs{{{sel},state=\"running\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, &format!("gitlab_runner_jobs_total{{{sel}}}")),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("gitlab_runner_job_duration_seconds_bucket{{{sel},le=\"30\"}}")
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("gitlab_runner_job_duration_seconds_bucket{{{sel},le=\"60\"}}")
            ),
            Some(1.0)
        );
        m.job_finished(&l, Duration::from_secs(5), Some("script_failure"));
        let text = m.render();
        assert_eq!(
            value(
                &text,
                &format!(
                    "gitlab_runner_failed_jobs_total{{{sel},failure_reason=\"script_failure\"}}"
                )
            ),
            Some(1.0)
        );
        // The quote in the runner's name is escaped.
        assert!(sel.contains("runner_name=\"host \\\"one\\\"\""));
    }

    #[test]
    fn api_answers_and_errors_are_counted() {
        let m = Metrics::new();
        let l = labels();
        m.api_request(&l, "request_job", "POST", "204");
        m.api_request(&l, "request_job", "POST", "204");
        m.logged("error");
        let text = m.render();
        assert_eq!(
            value(
                &text,
                &format!(
                    "gitlab_runner_api_request_statuses_total{{{},endpoint=\"request_job\",method=\"POST\",status=\"204\"}}",
                    l.render()
                )
            ),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "gitlab_runner_errors_total{level=\"error\"}"),
            Some(1.0)
        );
        assert!(text.contains("# TYPE gitlab_runner_job_duration_seconds histogram"));
        assert!(value(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
    }
}
