//! The `telemed` binary.

use clap::Parser;
use telemed_api::config::LogFormat;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let format = match LogFormat::from_env() {
        Ok(format) => format,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    telemed_api::telemetry::init_logging(format);
    let cli = telemed_api::cli::Cli::parse();
    match telemed_api::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
