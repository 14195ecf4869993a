//! Measures how fast the shell executor streams a step's output.
//!
//! `cargo run --release -p runner-executors --example throughput [MiB]`
//! prints the time a script printing MiB mebibytes (default 50) took, and
//! the rate. The sink only counts bytes, so this measures the executor.

use std::time::Instant;

use runner_executors::shell::{ShellExecutor, ShellOptions};
use runner_executors::{CancellationToken, Executor, JobEnv, StepRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50);
    let dir = tempfile::tempdir()?;
    let executor = ShellExecutor::new(ShellOptions::default())?;
    let env = JobEnv::new("1", dir.path(), dir.path().join("project"));
    let mut prepared = executor.prepare(&env).await?;
    let script = format!(
        "yes 'a line of output, about forty bytes long' | head -c {}\n",
        mib << 20
    );
    let mut count = 0usize;
    let mut sink = |bytes: &[u8]| count += bytes.len();
    let started = Instant::now();
    let request = StepRequest::new("step_script", script, &env.project_dir);
    let outcome = executor
        .run_step(&mut prepared, request, &mut sink, CancellationToken::new())
        .await?;
    let took = started.elapsed();
    println!(
        "{count} bytes in {took:.3?} ({:.0} MiB/s), exit {:?}, warnings {:?}",
        count as f64 / (1 << 20) as f64 / took.as_secs_f64(),
        outcome.exit,
        outcome.warnings
    );
    Ok(())
}
