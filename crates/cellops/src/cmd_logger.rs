//! `cellops logger`: check a temperature-logger file offline, or import it into a shipment
//! on a running server (`POST /api/shipments/{id}/logger` with an API token).
//!
//! The file is parsed by the same code as the server (`cellops_cold::import_csv`), so
//! `check` shows exactly the errors, warnings and excursions an import would record.

use crate::crash_client::http;
use anyhow::Context;
use cellops_cold::{
    ExcursionLimits, GenericCsv, LoggerFormat, TemperatureUnit, detect_excursions, import_csv,
};
use serde_json::json;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LoggerArgs {
    #[command(subcommand)]
    pub command: LoggerCommand,
}

/// How the file is laid out.
#[derive(clap::Args, Clone)]
pub struct FormatArgs {
    /// `generic` or `vendor-a` (see docs/cold-chain.md).
    #[arg(long, default_value = "generic")]
    pub format: String,
    /// Generic format: header name of the time column.
    #[arg(long, default_value = "timestamp")]
    pub timestamp_column: String,
    /// Generic format: header name of the temperature column.
    #[arg(long, default_value = "temperature_c")]
    pub temperature_column: String,
    /// Generic format: unit of the temperature column (celsius, fahrenheit, kelvin).
    #[arg(long, default_value = "celsius")]
    pub unit: String,
    /// Generic format: field delimiter.
    #[arg(long, default_value = ",")]
    pub delimiter: char,
    /// Generic format: UTC offset for times written without a zone, e.g. +09:00.
    #[arg(long)]
    pub utc_offset: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum LoggerCommand {
    /// Parse a logger file and print its samples summary, warnings and excursions (records
    /// nothing).
    Check {
        /// The logger file.
        file: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
        /// Alarm limit, °C.
        #[arg(long, default_value_t = ExcursionLimits::CRYO_DEFAULT.alarm_above_c)]
        alarm_above_c: f64,
        /// Reject limit, °C.
        #[arg(long, default_value_t = ExcursionLimits::CRYO_DEFAULT.reject_above_c)]
        reject_above_c: f64,
        /// The logger's sampling interval, s (a step longer than two intervals is a gap).
        #[arg(long, default_value_t = 300)]
        interval_seconds: u32,
        /// Longest step without data that is not a gap, minutes (overrides the two
        /// intervals; the shipment's `gap_minutes_max`).
        #[arg(long)]
        gap_minutes_max: Option<u32>,
    },
    /// Upload a logger file to a shipment on a running server.
    Import {
        /// The logger file.
        file: PathBuf,
        /// The shipment id.
        #[arg(long)]
        shipment: String,
        /// The server, host:port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        server: String,
        /// An API token of a user at the shipment's origin or destination site
        /// (`cellops user token` / `POST /api/auth/tokens`); or set CELLOPS_TOKEN. (A token
        /// may begin with "-": it is read as a value, not an option.)
        #[arg(long, allow_hyphen_values = true)]
        token: Option<String>,
        #[command(flatten)]
        format: FormatArgs,
    },
}

fn unit(text: &str) -> anyhow::Result<TemperatureUnit> {
    match text {
        "celsius" => Ok(TemperatureUnit::Celsius),
        "fahrenheit" => Ok(TemperatureUnit::Fahrenheit),
        "kelvin" => Ok(TemperatureUnit::Kelvin),
        other => anyhow::bail!("--unit {other:?}: use celsius, fahrenheit or kelvin"),
    }
}

fn format(f: &FormatArgs) -> anyhow::Result<LoggerFormat> {
    match f.format.as_str() {
        "vendor-a" => Ok(LoggerFormat::VendorA),
        "generic" => Ok(LoggerFormat::Generic(GenericCsv {
            delimiter: f.delimiter,
            timestamp_column: f.timestamp_column.clone(),
            temperature_column: f.temperature_column.clone(),
            unit: unit(&f.unit)?,
            utc_offset: f.utc_offset.clone(),
        })),
        other => anyhow::bail!("--format {other:?}: use generic or vendor-a"),
    }
}

pub fn run(args: LoggerArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        LoggerCommand::Check {
            file,
            format: f,
            alarm_above_c,
            reject_above_c,
            interval_seconds,
            gap_minutes_max,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let trace = import_csv(&text, &format(&f)?)?;
            let limits = ExcursionLimits {
                alarm_above_c,
                reject_above_c,
                gap_minutes_max,
            };
            let excursions = detect_excursions(
                &trace.samples,
                &limits,
                interval_seconds,
                (None, None),
                "check",
                1,
            );
            let first = trace.samples.first().map(|s| s.at.to_string());
            let last = trace.samples.last().map(|s| s.at.to_string());
            let report = json!({
                "samples": trace.samples.len(), "first": first, "last": last,
                "serial": trace.serial, "warnings": trace.warnings, "excursions": excursions,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if excursions.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                // Exit 3: the file is valid but holds excursions (for scripts).
                std::process::ExitCode::from(3)
            })
        }
        LoggerCommand::Import {
            file,
            shipment,
            server,
            token,
            format: f,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            // Parse locally first: a bad file is reported without a round trip.
            import_csv(&text, &format(&f)?)?;
            let addr = server
                .to_socket_addrs()
                .with_context(|| format!("--server {server}"))?
                .next()
                .with_context(|| format!("--server {server} resolves to no address"))?;
            let body = json!({
                "format": f.format, "csv": text, "timestamp_column": f.timestamp_column,
                "temperature_column": f.temperature_column, "unit": f.unit,
                "delimiter": f.delimiter, "utc_offset": f.utc_offset,
            });
            let token = match token {
                Some(t) => t,
                None => std::env::var("CELLOPS_TOKEN")
                    .context("give --token or set CELLOPS_TOKEN to an API token")?,
            };
            let auth = format!("Bearer {token}");
            let path = format!("/api/shipments/{shipment}/logger");
            let r = http(
                addr,
                "POST",
                &path,
                &[("Authorization", auth.as_str())],
                Some(&body.to_string()),
            )
            .with_context(|| format!("POST {path}"))?;
            println!("{}", r.text());
            anyhow::ensure!(
                r.status == 200,
                "the server refused the file ({})",
                r.status
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
