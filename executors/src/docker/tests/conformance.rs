//! The behaviour suite every executor passes, here in containers of the
//! busybox test image: with the builds dir bind-mounted (`bind`, the
//! default for the local socket) and copied in and out (`copy`).

use super::support::{DockerTarget, copy_options, test_options};
use crate::conformance;
use crate::docker::BuildsTransfer;

macro_rules! checks {
    ($options:ident, $transfer:expr, $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let t = DockerTarget::with_options($options()).await;
            assert_eq!(t.executor.builds_transfer(), $transfer);
            conformance::$name(&t).await;
        }
    )*};
}

macro_rules! suite {
    ($options:ident, $transfer:expr) => {
        checks!(
            $options,
            $transfer,
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
    };
}

mod bind {
    use super::*;
    suite!(test_options, BuildsTransfer::Bind);
}

mod copy {
    use super::*;
    suite!(copy_options, BuildsTransfer::Copy);
}
