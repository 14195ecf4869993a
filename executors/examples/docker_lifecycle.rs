//! Measures what the Docker executor costs over a bare container.
//!
//! `cargo run --release -p runner-executors --example docker_lifecycle [N] [IMAGE]`
//! runs a trivial step (`echo hi`) N times (default 20) through the
//! executor (prepare, run_step, cleanup), and as often a bare container
//! lifecycle through the API (create, start, wait, remove), alternating
//! the two so that both see the same load. Prints the minimum and median
//! of each, and the ratio. IMAGE defaults to the test image built by
//! `scripts/docker-setup`. Prints figures, asserts nothing.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures_util::StreamExt;
use runner_executors::docker::{DockerExecutor, DockerOptions};
use runner_executors::{CancellationToken, Executor, ImageSpec, JobEnv, StepRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let image = args
        .next()
        .unwrap_or_else(|| "local/busybox:runner-test".to_owned());

    let executor = DockerExecutor::new(DockerOptions::default()).await?;
    let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
    let dir = tempfile::tempdir()?;

    // One of each first: the image's layers into the page cache.
    through_executor(&executor, dir.path(), &image, 0).await?;
    bare(&docker, &image).await?;

    let (mut exec_times, mut bare_times) = (Vec::new(), Vec::new());
    for i in 0..runs {
        exec_times.push(through_executor(&executor, dir.path(), &image, i + 1).await?);
        bare_times.push(bare(&docker, &image).await?);
    }
    let (exec_min, exec_median) = min_median(&mut exec_times);
    let (bare_min, bare_median) = min_median(&mut bare_times);
    println!("{runs} runs of `echo hi` in {image}");
    println!(
        "  executor (prepare + run_step + cleanup): min {exec_min:.3?}, median {exec_median:.3?}"
    );
    println!(
        "  bare (create + start + wait + remove):   min {bare_min:.3?}, median {bare_median:.3?}"
    );
    println!(
        "  ratio: min {:.2}x, median {:.2}x",
        exec_min.as_secs_f64() / bare_min.as_secs_f64(),
        exec_median.as_secs_f64() / bare_median.as_secs_f64()
    );
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
