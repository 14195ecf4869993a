use clap::Parser;

use runner::cli::{Cli, Command};
use runner::commands;

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => commands::lint::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Exec(args) => commands::exec::run(&args),
        Command::Pipeline(args) => commands::pipeline::run(&args),
        Command::Cleanup(args) => commands::cleanup::run(&args),
        Command::Register(args) => commands::register::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Unregister(args) => commands::unregister::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::RunSingle(args) => commands::run::run_single(&args),
        Command::List(args) => commands::list::run(&args),
        Command::Install(args) => commands::service::install(&args),
        Command::Uninstall(args) => commands::service::uninstall(&args),
        Command::Start(args) => commands::service::control("start", &args),
        Command::Stop(args) => commands::service::control("stop", &args),
        Command::Restart(args) => commands::service::control("restart", &args),
        Command::Status(args) => commands::service::control("status", &args),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
