//! The `himaplan` binary: parse arguments, run, map errors to exit codes.
//! Exit codes: 0 success, 1 error (usage errors included), 2 changes or
//! drift with `--detailed-exitcode`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match himaplan::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(himaplan::cli::run(cli)) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(failure) => {
            eprint!("{failure}");
            if !failure.to_string().ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(1)
        }
    }
}
