use clap::Parser;

use runner::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
