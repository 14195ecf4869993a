//! `runner lint`: validate a configuration as GitLab would.

use super::common::{load_options, report_load_error};
use crate::ci::load::load;
use crate::cli::LintArgs;
use crate::errors::{RunnerError, exit};

pub fn run(args: &LintArgs) -> Result<i32, RunnerError> {
    let mut opts = load_options(&args.config, &args.context)?;
    opts.fragment = args.fragment;
    match load(&opts) {
        Ok(loaded) => {
            let jobs = loaded.pipeline.jobs.len();
            let files = loaded.sources.names().len();
            println!(
                "{}: valid ({jobs} job{}, {files} file{} read)",
                opts.file.display(),
                if jobs == 1 { "" } else { "s" },
                if files == 1 { "" } else { "s" },
            );
            Ok(exit::OK)
        }
        Err(err) => report_load_error(err),
    }
}
