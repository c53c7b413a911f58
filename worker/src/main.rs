use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use docworker::config::{Cli, Command};
use docworker::{app, shutdown, telemetry};

/// Exit code for configuration errors, as clap uses for usage errors.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap explains over several lines; the operator gets the one that names the setting.
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("docworker: {}", first.trim_start_matches("error: "));
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("docworker: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Run(args) => match args.validate() {
            Ok(config) => runtime.block_on(async {
                let stop = shutdown::on_signals()?;
                app::run(config, stop).await
            }),
            Err(e) => return config_error(e),
        },
        Command::Migrate(args) => match args.validate() {
            Ok(database) => runtime.block_on(async { app::migrate(&app::pool(database, 1)).await }),
            Err(e) => return config_error(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "docworker failed");
            eprintln!("docworker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(e: docworker::config::ConfigError) -> ExitCode {
    eprintln!("docworker: configuration error: {e}");
    ExitCode::from(CONFIG_ERROR)
}
