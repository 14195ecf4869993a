//! Measures what the Docker executor costs over a bare container.
//!
//! `cargo run --release -p runner-executors --example docker_lifecycle [N] [IMAGE] [MIB]`
//! runs a trivial step (`echo hi`) N times (default 20) through the
//! executor (prepare, run_step, cleanup) with the builds dir bind-mounted,
//! as often with it copied in and out (`BuildsTransfer::Copy`, what a
//! remote daemon gets), and as often a bare container lifecycle through
//! the API (create, start, wait, remove), taking turns so that all three
//! see the same load. Prints the minimum and median of each, and their
//! ratios to the bare lifecycle. IMAGE defaults to the test image built by
//! `scripts/docker-setup`; MIB (default 0) puts a file of that many MiB in
//! the project dir, which copy mode carries both ways on every step.
//! Prints figures, asserts nothing.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures_util::StreamExt;
use runner_executors::docker::{BuildsTransfer, DockerExecutor, DockerOptions};
use runner_executors::{CancellationToken, Executor, ImageSpec, JobEnv, StepRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let image = args
        .next()
        .unwrap_or_else(|| "local/busybox:runner-test".to_owned());
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0);

    let with = |transfer| {
        let mut options = DockerOptions::default();
        options.builds_transfer = transfer;
        options
    };
    let bind = DockerExecutor::new(with(BuildsTransfer::Bind)).await?;
    let copy = DockerExecutor::new(with(BuildsTransfer::Copy)).await?;
    let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
    let bind_dir = tempfile::tempdir()?;
    let copy_dir = tempfile::tempdir()?;
    for dir in [&bind_dir, &copy_dir] {
        let project = dir.path().join("builds/group/project");
        std::fs::create_dir_all(&project)?;
        // Written a MiB at a time, so that the process's peak memory
        // shows what the copies hold, not the payload.
        let mut payload = std::fs::File::create(project.join("payload"))?;
        for _ in 0..mib {
            std::io::Write::write_all(&mut payload, &[7u8; 1 << 20])?;
        }
    }

    // One of each first: the image's layers into the page cache.
    through_executor(&bind, bind_dir.path(), &image, 0).await?;
    through_executor(&copy, copy_dir.path(), &image, 0).await?;
    bare(&docker, &image).await?;

    let (mut bind_times, mut copy_times, mut bare_times) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        bind_times.push(through_executor(&bind, bind_dir.path(), &image, i + 1).await?);
        copy_times.push(through_executor(&copy, copy_dir.path(), &image, i + 1).await?);
        bare_times.push(bare(&docker, &image).await?);
    }
    let bind = min_median(&mut bind_times);
    let copy = min_median(&mut copy_times);
    let bare = min_median(&mut bare_times);
    println!("{runs} runs of `echo hi` in {image}, {mib} MiB in the project dir");
    let line = |what: &str, (min, median): (Duration, Duration)| {
        println!(
            "  {what:<36} min {min:>9.3?}, median {median:>9.3?}  ({:.2}x / {:.2}x bare)",
            min.as_secs_f64() / bare.0.as_secs_f64(),
            median.as_secs_f64() / bare.1.as_secs_f64()
        );
    };
    // Executor: prepare + run_step + cleanup; bare: create + start +
    // wait + remove.
    line("executor, builds dir bind-mounted", bind);
    line("executor, builds dir copied in/out", copy);
    line("bare container lifecycle", bare);
    Ok(())
}

async fn through_executor(
    executor: &DockerExecutor,
    root: &std::path::Path,
    image: &str,
    n: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let builds = root.join("builds");
    let env = JobEnv::new(n.to_string(), &builds, builds.join("group/project"))
        .with_image(ImageSpec::new(image));
    let started = Instant::now();
    let mut prepared = executor.prepare(&env).await?;
    let mut out = Vec::new();
    let request = StepRequest::new("step_script", "echo hi\n", &env.project_dir);
    let outcome = executor
        .run_step(&mut prepared, request, &mut out, CancellationToken::new())
        .await?;
    executor.cleanup(prepared).await?;
    let took = started.elapsed();
    if !outcome.exit.is_success() || out != b"hi\n" {
        return Err(format!("the step failed: {outcome:?}, output {out:?}").into());
    }
    Ok(took)
}

async fn bare(docker: &Docker, image: &str) -> Result<Duration, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let created = docker
        .create_container(
            None,
            ContainerCreateBody {
                image: Some(image.to_owned()),
                cmd: Some(vec!["echo".to_owned(), "hi".to_owned()]),
                ..ContainerCreateBody::default()
            },
        )
        .await?;
    docker.start_container(&created.id, None).await?;
    let _ = docker.wait_container(&created.id, None).next().await;
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(&created.id, Some(options)).await?;
    Ok(started.elapsed())
}

fn min_median(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort_unstable();
    (times[0], times[times.len() / 2])
}
