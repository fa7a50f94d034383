//! `cellops ledger verify|export|proof`.

use crate::database;
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_ledger::verify::VerifyReport;
use cellops_ledger::{Backend, Ledger, bundle};
use cellops_tlog::NoteVerifier;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(clap::Subcommand)]
pub enum LedgerCommand {
    /// Verify the whole ledger (or an exported bundle): hash chain, Merkle tree, signed
    /// checkpoints. Exit 0 when intact, 1 with the first damaged record and its class.
    Verify {
        #[arg(long)]
        database: Option<String>,
        /// Verify an exported bundle file instead of a database.
        #[arg(long, conflicts_with = "database")]
        bundle: Option<std::path::PathBuf>,
        /// Trust only this verifier key (note vkey format). Without it the key stored with
        /// the data is used, which shows integrity but not who holds the key.
        #[arg(long)]
        key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a portable bundle (records, checkpoints, public key) that verifies offline.
    Export {
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print an inclusion or consistency proof, checked against the signed checkpoint.
    Proof {
        #[arg(long)]
        database: Option<String>,
        #[command(subcommand)]
        kind: ProofKind,
    },
}

#[derive(clap::Subcommand)]
pub enum ProofKind {
    /// Prove that record SEQ is in the log (default tree size: the latest checkpoint).
    Inclusion {
        #[arg(long)]
        seq: u64,
        #[arg(long)]
        tree_size: Option<u64>,
    },
    /// Prove that the log of SECOND records extends the log of FIRST records.
    Consistency {
        #[arg(long)]
        first: u64,
        #[arg(long)]
        second: u64,
    },
}

pub fn run(args: LedgerArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        LedgerCommand::Verify {
            database,
            bundle: Some(path),
            key,
            json,
        } => {
            let _ = database;
            let trusted = parse_key(key.as_deref())?;
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open bundle {}", path.display()))?;
            let (header, report) =
                bundle::verify_bundle(std::io::BufReader::new(file), trusted.as_ref())?;
            if trusted.is_none() {
                eprintln!(
                    "note: verified against the bundle's own key {}; pass --key to pin the site's published key",
                    header.public_keys.first().map_or("(none)", |k| k.as_str())
                );
            }
            Ok(print_report(&report, json))
        }
        LedgerCommand::Verify {
            database,
            bundle: None,
            key,
            json,
        } => {
            let url = database::url(database);
            database::require_existing(&url)?;
            let trusted = parse_key(key.as_deref())?;
            crate::with_backend!(&url, B => verify_db::<B>(&url, trusted, json))
        }
        LedgerCommand::Export { database, out } => {
            let url = database::url(database);
            database::require_existing(&url)?;
            crate::with_backend!(&url, B => export::<B>(&url, &out))
        }
        LedgerCommand::Proof { database, kind } => {
            let url = database::url(database);
            database::require_existing(&url)?;
            crate::with_backend!(&url, B => proof::<B>(&url, kind))
        }
    }
}

fn parse_key(key: Option<&str>) -> anyhow::Result<Option<NoteVerifier>> {
    key.map(|k| {
        NoteVerifier::from_vkey(k)
            .with_context(|| format!("--key {k:?} is not a verifier key (NAME+HEXID+BASE64)"))
    })
    .transpose()
}

fn print_report(report: &VerifyReport, json: bool) -> std::process::ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        );
    } else {
        match &report.problem {
            None => println!(
                "OK: {} records, {} checkpoints verified (latest signed checkpoint covers {} records)",
                report.records_checked, report.checkpoints_checked, report.verified_checkpoint_size
            ),
            Some(f) => println!(
                "DAMAGED ({}) at record {}: {}\n{} records before it verified",
                f.damage, f.seq, f.detail, report.records_checked
            ),
        }
    }
    if report.is_ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Opens the store read-only in spirit: verification reads the key stored beside the data
/// unless `--key` pins one.
fn verify_db<B: Backend>(
    url: &str,
    trusted: Option<NoteVerifier>,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let mut backend = B::open(url)?;
    let key = match trusted {
        Some(k) => k,
        None => stored_verifier(&mut backend)?,
    };
    let report = bundle::verify_store(&mut backend, &key)?;
    Ok(print_report(&report, json))
}

fn stored_verifier<B: Backend>(backend: &mut B) -> anyhow::Result<NoteVerifier> {
    let Some(skey) = backend.meta_get("site_signing_key")? else {
        anyhow::bail!("this database has no site key: it was never opened by cellops serve");
    };
    Ok(cellops_tlog::NoteSigner::from_skey(&skey)
        .context("the stored site key is unusable")?
        .verifier())
}

fn open_ledger<B: Backend>(url: &str) -> anyhow::Result<Ledger<B>> {
    Ok(Ledger::<B>::open(
        url,
        Arc::new(WallClock),
        database::ledger_config(1000, 60),
    )?)
}

fn export<B: Backend>(url: &str, out: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    let ledger = open_ledger::<B>(url)?;
    // Sign a checkpoint over everything, so the whole export is covered by a signature.
    ledger.checkpoint_now()?;
    let tmp = out.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let origin = ledger.config().origin.clone();
    let key = ledger.verifier().clone();
    let header = ledger.read(|b| bundle::export(b, &origin, &key, &mut writer))?;
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, out)?;
    println!(
        "exported {} records and {} checkpoints to {}\npublic key: {}",
        header.records,
        header.checkpoints,
        out.display(),
        key.to_vkey()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn proof<B: Backend>(url: &str, kind: ProofKind) -> anyhow::Result<std::process::ExitCode> {
    let ledger = open_ledger::<B>(url)?;
    let key = ledger.verifier().clone();
    let checkpoints = ledger.read(|b| b.checkpoints(0, 1_000_000))?;
    let note_of = |size: u64| {
        checkpoints
            .iter()
            .find(|c| c.size == size)
            .map(|c| c.note.clone())
    };
    match kind {
        ProofKind::Inclusion { seq, tree_size } => {
            let p = ledger.inclusion_proof(seq, tree_size)?;
            let record = ledger.record(seq)?;
            let checked = match note_of(p.tree_size) {
                Some(note) => {
                    cellops_tlog::verify_inclusion_against_checkpoint(
                        &note,
                        &key,
                        seq - 1,
                        &record.leaf_hash(),
                        &p.path,
                    )?;
                    "verified against the signed checkpoint"
                }
                None => {
                    cellops_tlog::verify_inclusion(
                        seq - 1,
                        p.tree_size,
                        &record.leaf_hash(),
                        &p.path,
                        &p.root,
                    )?;
                    "verified against the computed root (no checkpoint of that size)"
                }
            };
            let out = serde_json::json!({
                "seq": seq, "leaf_index": seq - 1, "tree_size": p.tree_size,
                "leaf_hash": hex::encode(p.leaf_hash), "root": hex::encode(p.root),
                "path": p.path.iter().map(hex::encode).collect::<Vec<_>>(),
                "checkpoint": note_of(p.tree_size), "public_key": key.to_vkey(), "check": checked,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ProofKind::Consistency { first, second } => {
            let p = ledger.consistency_proof(first, second)?;
            let checked = match (note_of(first), note_of(second)) {
                (Some(a), Some(b)) => {
                    cellops_tlog::verify_consistency_between_checkpoints(&a, &b, &key, &p.path)?;
                    "verified between the two signed checkpoints"
                }
                _ => {
                    cellops_tlog::verify_consistency(
                        first,
                        second,
                        &p.first_root,
                        &p.second_root,
                        &p.path,
                    )?;
                    "verified against the computed roots (no checkpoints of those sizes)"
                }
            };
            let out = serde_json::json!({
                "first": first, "second": second,
                "first_root": hex::encode(p.first_root), "second_root": hex::encode(p.second_root),
                "path": p.path.iter().map(hex::encode).collect::<Vec<_>>(), "check": checked,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
