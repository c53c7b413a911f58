use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use docworker::config::{Cli, Command};
use docworker::observe::telemetry;
use docworker::operate::{dlq, reconcile, replay};
use docworker::{app, clients, shutdown};

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
            eprintln!("docworker: configuration error: {}", one_line(&e));
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    telemetry::init(cli.log_format);
    // One runtime thread: docworker's async work is network I/O plus hashing each chunk of a
    // small object as it arrives; large objects are hashed, and long DICOM headers parsed, on
    // blocking threads. Measured against the multi-threaded runtime, this spends 13% less CPU
    // per small object (fewer cross-thread wake-ups) and streams a 1 GiB object as fast with
    // less CPU (docs/performance.md). More cores: more workers.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
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
        Command::Replay(args) => match args.validate() {
            Ok(config) => runtime.block_on(replay::execute(args, config)),
            Err(e) => return config_error(e),
        },
        Command::Dlq { action } => match action.validate() {
            Ok(config) => runtime.block_on(dlq::execute(action, config)),
            Err(e) => return config_error(e),
        },
        Command::Reconcile(args) => match args.validate() {
            Ok(config) => runtime.block_on(reconcile::execute(args, config)),
            Err(e) => return config_error(e),
        },
        Command::Migrate(args) => match args.validate() {
            Ok(database) => {
                runtime.block_on(async { app::migrate(&clients::pool(&database, 1)).await })
            }
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

/// clap explains over several lines and names flags; the operator gets the first line, with the
/// environment variable the value most likely came from.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.to_string();
    let mut line = rendered
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    let command = Cli::command();
    let env_name = command
        .get_subcommands()
        .flat_map(|sub| sub.get_subcommands().chain(std::iter::once(sub)))
        .flat_map(|sub| sub.get_arguments())
        .chain(command.get_arguments())
        .find_map(|arg| {
            let long = arg.get_long()?;
            let env = arg.get_env()?;
            line.contains(&format!("'--{long} "))
                .then(|| env.to_string_lossy().into_owned())
        });
    if let Some(env_name) = env_name {
        line.push_str(&format!(" (setting {env_name})"));
    }
    line
}

fn config_error(e: docworker::config::ConfigError) -> ExitCode {
    eprintln!("docworker: configuration error: {e}");
    ExitCode::from(CONFIG_ERROR)
}
