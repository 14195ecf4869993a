//! `runner run`: the agent's main loop.
//!
//! A feeder walks the `[[runners]]` entries, one every `check_interval /
//! entries`, and starts a job request for each that has room (see
//! `capacity`) and is healthy (see `health`). A request that brings a job
//! hands its slot to the job and asks again at once, and so does a job
//! that ends, so a queue of jobs drains without waiting for the next round
//! (`strict_check_interval` turns both off). Signals:
//! - SIGQUIT: stop asking for jobs; running ones finish; then exit;
//! - SIGTERM / SIGINT: stop asking, abort running jobs (reported
//!   `runner_interrupted`), wait at most `shutdown_timeout` for them and
//!   their final updates; a second one exits at once;
//! - SIGHUP (or a change of the file, checked every 3 s): reload
//!   `config.toml`. Running jobs keep the settings they started with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, load_config};
use crate::gitlab::{ApiAnswer, JobRequest, JobRequestOutcome, TraceConfig};

use super::capacity::{Capacity, Limits, Refusal};
use super::config_watch::{self, ConfigWatch};
use super::entry::{entry_name, prepare_entry};
use super::health::{Health, HealthSettings, RequestResult};
use super::http::{self, StatusSource};
use super::job::{EntryContext, JobEnd, JobServices, run_received_job};
use super::layout::ConcurrencyIds;
use super::log::AgentLog;
use super::metrics::Metrics;
use super::rotation;

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config_path: PathBuf,
    /// Where builds and caches of entries that name no directory go.
    pub working_dir: PathBuf,
    /// `--listen-address`, over the file's `listen_address`.
    pub listen_address: Option<String>,
    /// This host's system id (`.runner_system_id`).
    pub system_id: String,
    /// The trace streamer's timings (tests shorten them).
    pub trace: TraceConfig,
    /// Stop (gracefully) after this many jobs (`run-single --max-builds`).
    pub max_builds: Option<u32>,
    /// Stop after this long without a job (`run-single --wait-timeout`).
    pub wait_timeout: Option<Duration>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Setup(String),
}

/// One entry while the daemon runs.
struct Entry {
    ctx: Arc<EntryContext>,
    health: Mutex<Health>,
    last_update: Mutex<Option<String>>,
    /// A token rotation is under way, or failed and waits until then.
    rotation: Mutex<Rotation>,
}

#[derive(Debug, Default)]
enum Rotation {
    #[default]
    Idle,
    Running,
    FailedUntil(Instant),
}

struct Settings {
    config: Config,
    entries: Vec<Arc<Entry>>,
}

/// The running agent.
pub struct Daemon {
    options: DaemonOptions,
    log: AgentLog,
    metrics: Arc<Metrics>,
    capacity: Capacity,
    ids: ConcurrencyIds,
    settings: Mutex<Arc<Settings>>,
    /// Stop asking for jobs.
    stopping: CancellationToken,
    /// Abort running jobs.
    interrupt: CancellationToken,
    reloaded: Notify,
    jobs: TaskTracker,
    /// Jobs received so far, and when the last one came.
    received: AtomicU32,
    last_job: Mutex<Instant>,
}

impl Daemon {
    /// Loads the configuration and prepares every entry.
    pub async fn start(options: DaemonOptions) -> Result<Arc<Daemon>, DaemonError> {
        let loaded =
            load_config(&options.config_path).map_err(|e| DaemonError::Config(e.to_string()))?;
        let config = loaded.config;
        let metrics = Arc::new(Metrics::new());
        let log = AgentLog::stderr(config.log_level, config.log_format)
            .with_metrics(Arc::clone(&metrics));
        for warning in &loaded.warnings {
            log.warning(&warning.to_string(), &[]);
        }
        let daemon = Arc::new(Daemon {
            options,
            log,
            metrics,
            capacity: Capacity::new(),
            ids: ConcurrencyIds::new(),
            settings: Mutex::new(Arc::new(Settings {
                config: config.clone(),
                entries: Vec::new(),
            })),
            stopping: CancellationToken::new(),
            interrupt: CancellationToken::new(),
            reloaded: Notify::new(),
            jobs: TaskTracker::new(),
            received: AtomicU32::new(0),
            last_job: Mutex::new(Instant::now()),
        });
        daemon.apply(config, true).await;
        Ok(daemon)
    }

    /// The agent's log.
    pub fn log(&self) -> &AgentLog {
        &self.log
    }

    /// Asks the daemon to stop gracefully (SIGQUIT).
    pub fn stop_gracefully(&self) {
        if !self.stopping.is_cancelled() {
            self.log
                .info("Stopping: no new jobs; running jobs finish", &[]);
        }
        self.stopping.cancel();
    }

    /// Asks the daemon to stop forcefully (SIGTERM, SIGINT). Returns false
    /// when it was already asked: the caller then exits at once.
    pub fn stop_forcefully(&self) -> bool {
        if self.interrupt.is_cancelled() {
            return false;
        }
        self.log.info("Stopping: running jobs are aborted", &[]);
        self.stopping.cancel();
        self.interrupt.cancel();
        true
    }

    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the configuration; a file that does not load leaves the
    /// running configuration as it is.
    pub async fn reload(&self) {
        match load_config(&self.options.config_path) {
            Ok(loaded) => {
                self.log.info(
                    "Configuration loaded",
                    &[("file", &self.options.config_path.display())],
                );
                for warning in &loaded.warnings {
                    self.log.warning(&warning.to_string(), &[]);
                }
                self.apply(loaded.config, false).await;
                self.reloaded.notify_waiters();
            }
            Err(e) => {
                self.metrics.config_load_failed();
                self.log.error(
                    "Configuration not reloaded; the previous one stays",
                    &[("error", &e)],
                );
            }
        }
    }

    /// Makes `config` the running configuration. Entries whose settings
    /// did not change keep their executor, health and `last_update`.
    async fn apply(&self, config: Config, at_start: bool) {
        self.log.reconfigure(config.log_level, config.log_format);
        let old = self.settings();
        let mut by_token: HashMap<&str, &Arc<Entry>> = old
            .entries
            .iter()
            .map(|e| (e.ctx.config.token.as_str(), e))
            .collect();
        let mut entries = Vec::new();
        for runner in &config.runners {
            if let Some(existing) = by_token.remove(runner.token.as_str())
                && existing.ctx.config == *runner
            {
                entries.push(Arc::clone(existing));
                continue;
            }
            match prepare_entry(
                runner,
                &self.options.working_dir,
                &self.options.system_id,
                at_start,
            )
            .await
            {
                Ok(mut ctx) => entries.push(Arc::new(Entry {
                    ctx: {
                        let metrics = Arc::clone(&self.metrics);
                        let labels = ctx.labels.clone();
                        ctx.client =
                            ctx.client.with_observer(Arc::new(move |a: &ApiAnswer<'_>| {
                                let status = a.status.map_or("error".to_owned(), |s| s.to_string());
                                metrics.api_request(&labels, a.endpoint, a.method, &status);
                            }));
                        Arc::new(ctx)
                    },
                    health: Mutex::new(Health::default()),
                    last_update: Mutex::new(None),
                    rotation: Mutex::new(Rotation::Idle),
                })),
                Err(e) => self.log.error(&e, &[]),
            }
        }
        let described: Vec<_> = entries
            .iter()
            .map(|e| {
                (
                    e.ctx.labels.clone(),
                    e.ctx.config.limit,
                    e.ctx.config.request_concurrency(),
                )
            })
            .collect();
        self.metrics.configured(config.concurrent.get(), &described);
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Settings { config, entries });
    }

    /// Runs until stopped; returns once every job has ended (or the
    /// shutdown timeout passed after a forceful stop).
    pub async fn run(self: &Arc<Self>) -> Result<(), DaemonError> {
        let server_stop = CancellationToken::new();
        let listen = self
            .options
            .listen_address
            .clone()
            .or_else(|| self.settings().config.listen_address.clone());
        if let Some(text) = listen {
            let addr = http::listen_addr(&text).map_err(DaemonError::Setup)?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::Setup(format!("cannot listen on {addr}: {e}")))?;
            self.log.info(
                "Metrics and health served",
                &[("address", &listener.local_addr().map_or(addr, |a| a))],
            );
            let source: Arc<dyn StatusSource> = Arc::new(Status(Arc::clone(self)));
            tokio::spawn(http::serve(listener, source, server_stop.clone()));
        }
        let watcher = tokio::spawn(Arc::clone(self).watch_config());
        let settings = self.settings();
        self.log.info(
            "Runner started",
            &[
                ("version", &env!("CARGO_PKG_VERSION")),
                ("runners", &settings.entries.len()),
                ("concurrent", &settings.config.concurrent),
            ],
        );
        self.feed().await;
        watcher.abort();

        self.jobs.close();
        if !self.interrupt.is_cancelled() {
            // Graceful: wait for the jobs, unless a forceful stop comes.
            tokio::select! {
                () = self.jobs.wait() => {}
                () = self.interrupt.cancelled() => {}
            }
        }
        if self.interrupt.is_cancelled() {
            let timeout = self.settings().config.shutdown_timeout();
            if tokio::time::timeout(timeout, self.jobs.wait())
                .await
                .is_err()
            {
                self.log.warning(
                    "Shutdown timeout reached; jobs still running are left",
                    &[("timeout_s", &timeout.as_secs())],
                );
            }
        }
        server_stop.cancel();
        self.log.info("Runner stopped", &[]);
        Ok(())
    }

    /// The feeder: one entry per `check_interval / entries` until stopped.
    async fn feed(self: &Arc<Self>) {
        'rounds: loop {
            if self.stopping.is_cancelled() {
                return;
            }
            if let Some(wait) = self.options.wait_timeout {
                let idle = self
                    .last_job
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed();
                if idle >= wait && self.capacity.running_jobs() == 0 {
                    self.log.info("No job within the wait timeout", &[]);
                    self.stop_gracefully();
                    return;
                }
            }
            let settings = self.settings();
            let interval = settings.config.check_interval();
            let count = settings.entries.len().max(1) as u32;
            let step = interval / count;
            let reloaded = self.reloaded.notified();
            tokio::pin!(reloaded);
            if settings.entries.is_empty() {
                tokio::select! {
                    () = self.stopping.cancelled() => return,
                    () = &mut reloaded => continue 'rounds,
                    () = tokio::time::sleep(interval) => continue 'rounds,
                }
            }
            for entry in &settings.entries {
                self.rotate_if_due(entry);
                self.try_request(entry, &settings.config);
                tokio::select! {
                    () = self.stopping.cancelled() => return,
                    () = &mut reloaded => continue 'rounds,
                    () = tokio::time::sleep(step) => {}
                }
            }
        }
    }

    /// Replaces the entry's token when it nears its expiry (see
    /// `rotation`); the reload that follows gives the entry its new token.
    fn rotate_if_due(self: &Arc<Self>, entry: &Arc<Entry>) {
        if !rotation::rotation_due(&entry.ctx.config, std::time::SystemTime::now()) {
            return;
        }
        {
            let mut state = entry.rotation.lock().unwrap_or_else(|e| e.into_inner());
            match *state {
                Rotation::Running => return,
                Rotation::FailedUntil(t) if Instant::now() < t => return,
                _ => *state = Rotation::Running,
            }
        }
        let daemon = Arc::clone(self);
        let entry = Arc::clone(entry);
        tokio::spawn(async move {
            let name = entry_name(&entry.ctx.config);
            let result = rotation::rotate(
                &entry.ctx.client,
                &entry.ctx.config,
                &daemon.options.config_path,
            )
            .await;
            match result {
                Ok(short) => {
                    daemon.log.info(
                        "Runner token rotated",
                        &[("runner", &name), ("token", &short)],
                    );
                    *entry.rotation.lock().unwrap_or_else(|e| e.into_inner()) = Rotation::Idle;
                    daemon.reload().await;
                }
                Err(why) => {
                    daemon.log.error(
                        "Runner token not rotated",
                        &[("runner", &name), ("error", &why)],
                    );
                    *entry.rotation.lock().unwrap_or_else(|e| e.into_inner()) =
                        Rotation::FailedUntil(Instant::now() + rotation::RETRY_AFTER);
                }
            }
        });
    }

    /// Asks for another job for `entry` at once, unless it waits for its
    /// turn (`strict_check_interval`) or a reload removed it.
    fn ask_again(self: &Arc<Self>, entry: &Arc<Entry>) {
        if entry.ctx.config.strict_check_interval {
            return;
        }
        let settings = self.settings();
        if settings.entries.iter().any(|e| Arc::ptr_eq(e, entry)) {
            self.try_request(entry, &settings.config);
        }
    }

    /// Starts a job request for `entry` if it has room and is healthy.
    fn try_request(self: &Arc<Self>, entry: &Arc<Entry>, config: &Config) {
        if self.stopping.is_cancelled() {
            return;
        }
        let now = Instant::now();
        if !entry
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .may_request(now)
        {
            return;
        }
        let limits = Limits {
            concurrent: config.concurrent.get(),
            limit: entry.ctx.config.limit,
            request_concurrency: entry.ctx.config.request_concurrency(),
        };
        let slot = match self.capacity.try_request(&entry.ctx.config.token, limits) {
            Ok(slot) => slot,
            Err(Refusal::RequestConcurrency) => {
                self.metrics.request_concurrency_exceeded(&entry.ctx.labels);
                return;
            }
            Err(_) => return,
        };
        let daemon = Arc::clone(self);
        let entry = Arc::clone(entry);
        tokio::spawn(async move { daemon.request(entry, slot).await });
    }

    async fn request(self: Arc<Self>, entry: Arc<Entry>, slot: super::capacity::RequestSlot) {
        let ctx = &entry.ctx;
        let last_update = entry
            .last_update
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let request = ctx.client.request_job(JobRequest {
            token: &ctx.config.token,
            system_id: &ctx.system_id,
            last_update: last_update.as_deref(),
            info: &ctx.info,
        });
        // A long poll may hold the request for most of a minute; a stop
        // does not wait for it. A job GitLab assigned meanwhile is never
        // acknowledged and goes back to its queue.
        let answer = tokio::select! {
            answer = request => answer,
            () = self.stopping.cancelled() => return,
        };
        let name = entry_name(&ctx.config);
        let result = match &answer {
            Ok(response) => {
                if let Some(value) = &response.last_update {
                    *entry.last_update.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(value.clone());
                }
                match &response.outcome {
                    JobRequestOutcome::Job(_) | JobRequestOutcome::NoJob => RequestResult::Answered,
                    // Another runner took the job: nothing wrong here.
                    JobRequestOutcome::Conflict => RequestResult::Answered,
                    JobRequestOutcome::Forbidden { message } => {
                        self.log.error(
                            "Checking for jobs... forbidden",
                            &[("runner", &name), ("message", message)],
                        );
                        RequestResult::Unhealthy
                    }
                    JobRequestOutcome::Orphaned { message } => {
                        self.log.error(
                            "Checking for jobs... runner orphaned",
                            &[("runner", &name), ("message", message)],
                        );
                        RequestResult::ServerTrouble
                    }
                    other => {
                        self.log.warning(
                            "Checking for jobs... failed",
                            &[("runner", &name), ("answer", &format_args!("{other:?}"))],
                        );
                        RequestResult::ServerTrouble
                    }
                }
            }
            Err(e) => {
                self.log.warning(
                    "Checking for jobs... failed",
                    &[("runner", &name), ("error", e)],
                );
                if e.is_transport() {
                    RequestResult::Unhealthy
                } else {
                    RequestResult::ServerTrouble
                }
            }
        };
        let health_settings = HealthSettings {
            unhealthy_requests_limit: ctx.config.unhealthy_requests_limit(),
            unhealthy_interval: ctx.config.unhealthy_interval(),
        };
        let became_unhealthy = entry
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(result, health_settings, Instant::now());
        if became_unhealthy {
            self.log.error(
                "Runner is not healthy and will be disabled for a while",
                &[
                    ("runner", &name),
                    ("for_s", &health_settings.unhealthy_interval.as_secs()),
                ],
            );
        }

        let Ok(response) = answer else { return };
        match response.outcome {
            JobRequestOutcome::Job(job) => {
                self.log.info(
                    "Checking for jobs... received",
                    &[("job", &job.payload.id), ("runner", &name)],
                );
                *self.last_job.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                let received = self.received.fetch_add(1, Ordering::SeqCst) + 1;
                if self.options.max_builds.is_some_and(|max| received >= max) {
                    self.stop_gracefully();
                }
                let job_slot = slot.into_job();
                let daemon = Arc::clone(&self);
                let job_entry = Arc::clone(&entry);
                self.jobs.spawn(async move {
                    let services = JobServices {
                        ids: &daemon.ids,
                        metrics: &daemon.metrics,
                        log: &daemon.log,
                        interrupt: daemon.interrupt.clone(),
                        trace: daemon.options.trace.clone(),
                    };
                    let id = job.payload.id;
                    if let JobEnd::Dropped(why) =
                        run_received_job(&job_entry.ctx, services, job.payload).await
                    {
                        daemon
                            .log
                            .warning("Job not run", &[("job", &id), ("reason", &why)]);
                    }
                    drop(job_slot);
                    *daemon.last_job.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                    // The slot is free: ask for the next job now rather
                    // than at the entry's next turn.
                    daemon.ask_again(&job_entry);
                });
                // Drain a burst of jobs without waiting for the next round.
                self.ask_again(&entry);
            }
            JobRequestOutcome::BadPayload { reason } => {
                self.log.error(
                    "GitLab sent a job this runner cannot read",
                    &[("runner", &name), ("reason", &reason)],
                );
            }
            _ => {}
        }
    }

    /// Reloads when the file changes (checked every few seconds).
    async fn watch_config(self: Arc<Self>) {
        let mut watch = ConfigWatch::new(&self.options.config_path);
        loop {
            tokio::time::sleep(config_watch::CHECK_INTERVAL).await;
            if watch.changed() {
                self.reload().await;
            }
        }
    }

    /// One line per running job, for `/debug/jobs/list`.
    fn jobs_text(&self) -> String {
        let settings = self.settings();
        settings
            .entries
            .iter()
            .map(|e| {
                format!(
                    "runner={} name={} running={}\n",
                    e.ctx.short_token,
                    e.ctx.config.name,
                    self.capacity.running_jobs_of(&e.ctx.config.token)
                )
            })
            .collect()
    }
}

/// The HTTP endpoints' view of the daemon.
struct Status(Arc<Daemon>);

impl StatusSource for Status {
    fn metrics(&self) -> String {
        self.0.metrics.render()
    }

    fn ready(&self) -> bool {
        !self.0.stopping.is_cancelled() && !self.0.settings().entries.is_empty()
    }

    fn jobs(&self) -> String {
        self.0.jobs_text()
    }
}
