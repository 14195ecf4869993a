//! Streaming a step's output pipe into its sink.

use std::future::{Future, pending};
use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::time::{Instant, sleep_until};

use crate::OutputSink;

/// Bytes read from the pipe per call: a pipe's whole default capacity,
/// so one read empties it, and a job printing a lot costs one wake-up per
/// 64 KiB. The buffer is reused and each chunk goes straight to the sink,
/// so memory stays flat whatever the volume.
const READ_CHUNK: usize = 64 * 1024;

/// Reads the step's pipe and hands every chunk to the sink, immediately.
pub(crate) struct OutputPump<'s> {
    reader: pipe::Receiver,
    buf: Box<[u8]>,
    eof: bool,
    sink: &'s mut dyn OutputSink,
    error: Option<io::Error>,
}

impl<'s> OutputPump<'s> {
    pub fn new(reader: pipe::Receiver, sink: &'s mut dyn OutputSink) -> Self {
        OutputPump {
            reader,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            eof: false,
            sink,
            error: None,
        }
    }

    /// True once every write end of the pipe is closed: no process of the
    /// step can write anything more.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// A read error, which ended the reading (reported as a warning).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Reads one chunk into the sink; never completes after EOF.
    ///
    /// Cancel safe, as `AsyncRead::read` is: dropping it loses no data, so
    /// it can be one branch of a `select!`.
    pub async fn read_once(&mut self) {
        if self.eof {
            return pending().await;
        }
        match self.reader.read(&mut self.buf).await {
            Ok(0) => self.eof = true,
            Ok(n) => self.sink.output(&self.buf[..n]),
            // EINTR is retried inside tokio; anything else on a pipe we
            // own means it is unusable, so stop reading rather than spin.
            Err(e) => {
                self.eof = true;
                self.error = Some(e);
            }
        }
    }

    /// Keeps the output flowing until `fut` completes or `deadline`
    /// passes (`None` if it passed first).
    ///
    /// Output must keep being read while waiting for anything else: a
    /// process that fills the pipe blocks in `write` and would never reach
    /// the exit, or the signal handler, we are waiting for.
    pub async fn pump_until<F: Future>(
        &mut self,
        fut: F,
        deadline: Option<Instant>,
    ) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        let mut timer = std::pin::pin!(sleep_until_opt(deadline));
        loop {
            tokio::select! {
                // Polled in this order: a job that prints without pause
                // keeps the pipe always readable, and must not starve the
                // event or the deadline we wait for.
                biased;
                out = &mut fut => return Some(out),
                () = &mut timer => return None,
                () = self.read_once() => {}
            }
        }
    }

    /// Reads until EOF or `deadline`; true if EOF was reached.
    pub async fn until_eof(&mut self, deadline: Instant) -> bool {
        let mut timer = std::pin::pin!(sleep_until(deadline));
        while !self.eof {
            tokio::select! {
                biased;
                () = &mut timer => break,
                () = self.read_once() => {}
            }
        }
        self.eof
    }

    /// Reads whatever arrives during `d`.
    pub async fn pump_for(&mut self, d: Duration) {
        let _ = self
            .pump_until(pending::<()>(), Some(Instant::now() + d))
            .await;
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => pending().await,
    }
}
