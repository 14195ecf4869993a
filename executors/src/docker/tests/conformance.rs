//! The behaviour suite every executor passes, here in containers of the
//! busybox test image.

use super::support::DockerTarget;
use crate::conformance;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            conformance::$name(&DockerTarget::new().await).await;
        }
    )*};
}

checks!(
    output_order,
    exit_code_kept,
    env_visible,
    workdir_honoured,
    stdin_is_closed,
    long_script_and_early_exit,
    timeout_kills_everything,
    cancel_kills_everything,
    term_ignored_escalates,
    background_holding_output_is_bounded,
    background_without_output_is_killed,
    large_output_streams,
    concurrent_steps,
    missing_shell,
);
