//! `cellops training`: check and import a curriculum, print a site's training matrix.
//!
//! The import is recorded as the named user (a trainer or site administrator at the site);
//! it is used only after QA e-signs its record with the meaning "Approved" (in the API).

use crate::database;
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_domain::{Clock, Role, SiteId, UserId};
use cellops_ledger::{AppendRequest, Backend, Ledger};
use cellops_server::routes::training::{TrainingModel, matrix_report, record_of};
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct TrainingArgs {
    #[command(subcommand)]
    pub command: TrainingCommand,
}

#[derive(clap::Subcommand)]
pub enum TrainingCommand {
    /// Validate a curriculum TOML file without recording anything.
    Check {
        /// The curriculum file.
        file: PathBuf,
    },
    /// Import a curriculum version into the ledger (then QA approves it by e-signature).
    Import {
        /// The curriculum file.
        file: PathBuf,
        #[arg(long)]
        database: Option<String>,
        /// The site whose training office imports it.
        #[arg(long)]
        site: String,
        /// Who imports it: a trainer or site administrator at the site.
        #[arg(long)]
        by: String,
    },
    /// Print a site's training matrix (people × qualifications with expiry).
    Matrix {
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        site: String,
        /// json or csv.
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

pub fn run(args: TrainingArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        TrainingCommand::Check { file } => {
            let text = read(&file)?;
            let c = cellops_training::Curriculum::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "{} version {}: {} courses, {} qualifications, content hash {}",
                c.id,
                c.version,
                c.courses.len(),
                c.qualifications.len(),
                c.content_hash()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        TrainingCommand::Import {
            file,
            database,
            site,
            by,
        } => {
            let text = read(&file)?;
            let site = SiteId::parse(&site).map_err(|e| anyhow::anyhow!("--site: {e}"))?;
            let by = UserId::parse(&by).map_err(|e| anyhow::anyhow!("--by: {e}"))?;
            let url = database::url(database);
            crate::with_backend!(&url, B => import::<B>(&url, &text, &site, &by))
        }
        TrainingCommand::Matrix {
            database,
            site,
            format,
        } => {
            let site = SiteId::parse(&site).map_err(|e| anyhow::anyhow!("--site: {e}"))?;
            if format != "csv" && format != "json" {
                anyhow::bail!("--format {format:?}: use csv or json");
            }
            let url = database::url(database);
            crate::with_backend!(&url, B => matrix::<B>(&url, &site, &format))
        }
    }
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn open<B: Backend>(url: &str) -> anyhow::Result<cellops_server::AppState<B>> {
    let ledger = Ledger::<B>::open(url, Arc::new(WallClock), database::ledger_config(1000, 60))?;
    let state = cellops_server::AppState::new(
        ledger,
        Arc::new(WallClock),
        rand::rngs::StdRng::from_entropy(),
        Default::default(),
    );
    state
        .sync_blocking()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(state)
}

fn import<B: Backend>(
    url: &str,
    text: &str,
    site: &SiteId,
    by: &UserId,
) -> anyhow::Result<std::process::ExitCode> {
    let state = open::<B>(url)?;
    let allowed = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(by.as_str())
        .is_some_and(|u| {
            u.active && (u.has_role(Role::Trainer, site) || u.has_role(Role::SiteAdmin, site))
        });
    if !allowed {
        anyhow::bail!(
            "--by {by}: needs an active account with the role trainer or site_admin at {site}"
        );
    }
    let event = state
        .read_model(|m: &mut TrainingModel| {
            cellops_training::decide::decide_import(&m.state, text, by, WallClock.now())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = state.ledger.append(AppendRequest {
        records: vec![record_of(&event, by.as_str(), site)],
        idempotency_key: None,
    })?;
    let record = &out.records[0];
    println!(
        "imported as record {} (hash {}); QA approves it by e-signing record {} with the meaning \"Approved\"",
        record.seq,
        hex::encode(record.hash),
        record.seq
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn matrix<B: Backend>(
    url: &str,
    site: &SiteId,
    format: &str,
) -> anyhow::Result<std::process::ExitCode> {
    let state = open::<B>(url)?;
    let report = matrix_report(&state, site, WallClock.now());
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_csv());
    }
    Ok(std::process::ExitCode::SUCCESS)
}
