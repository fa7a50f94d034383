//! `cellops coa --batch B [--database URL] [--out FILE]`: the certificate of analysis of a
//! batch as PDF, built from the ledger exactly as `GET /api/batches/{batch}/coa` builds it
//! (the QC read model replayed from the records; nothing is written to the ledger).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cellops_domain::Clock;
use cellops_ledger::Backend;
use cellops_server::accounts::Accounts;
use cellops_server::projection::Projection;

#[derive(clap::Args)]
pub struct CoaArgs {
    /// The batch id (as registered for QC).
    #[arg(long)]
    pub batch: String,
    /// Database URL (`sqlite://PATH` or `postgres://…`); default: the data directory's SQLite file.
    #[arg(long)]
    pub database: Option<String>,
    /// Where to write the PDF (default `coa-<batch>.pdf`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Records read per query while replaying the ledger.
const READ_PAGE_RECORDS: usize = 5_000;

pub fn run(args: CoaArgs) -> anyhow::Result<ExitCode> {
    let url = crate::database::url(args.database.clone());
    crate::database::require_existing(&url)?;
    crate::with_backend!(&url, B => coa::<B>(&url, &args))
}

fn coa<B: Backend>(url: &str, args: &CoaArgs) -> anyhow::Result<ExitCode> {
    // A reader connection: no migrations, no writes.
    let mut backend = B::connect(url)?;
    let mut model = cellops_server::routes::qc::projection();
    let mut accounts = Accounts::default();
    let mut last_seq = 0;
    loop {
        let records = backend.records(last_seq + 1, READ_PAGE_RECORDS)?;
        let Some(last) = records.last() else { break };
        last_seq = last.seq;
        for r in &records {
            model.apply(r);
            accounts.apply(r);
        }
    }
    let name_of = |id: &str| accounts.user(id).map(|u| u.full_name.clone());
    let now = crate::wall_clock::WallClock.now();
    let certificate = model
        .certificate(&args.batch, &name_of, last_seq, now)
        .with_context(|| {
            format!(
                "batch {} is not registered for QC in this ledger (POST /api/batches/{}/qc)",
                args.batch, args.batch
            )
        })??;
    let pdf = certificate.render_pdf()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("coa-{}.pdf", args.batch)));
    std::fs::write(&out, pdf).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {} (certificate of analysis of batch {}, ledger records 1 to {last_seq})",
        out.display(),
        args.batch
    );
    Ok(ExitCode::SUCCESS)
}
