//! `cellops label --din … --product … --description … --out labels.pdf|labels.svg`:
//! render unit labels to a file. Printing and recording the print are not done here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cellops_isbt::{ChainOfIdentityId, Din, IsbtDateTime, ProductCode};
use cellops_label::{LABELS_PER_DOCUMENT_MAX, LabelContent, SheetLayout, render_pdf, render_svg};

#[derive(clap::Args)]
pub struct LabelArgs {
    /// The DIN, scanned (=A99992600004287) or typed (A9999 26 000042 R).
    #[arg(long)]
    din: String,
    /// The product code, scanned (=<S1234100) or typed (S1234100).
    #[arg(long)]
    product: String,
    /// Division to print into the product code (2 characters, e.g. A0 or Ab).
    #[arg(long)]
    division: Option<String>,
    /// The product description printed on the label (from the site's product table).
    #[arg(long)]
    description: String,
    /// Expiry: YYYY-MM-DD (means 23:59) or YYYY-MM-DDThh:mm, local time.
    #[arg(long)]
    expiry: Option<String>,
    /// Time zone abbreviation printed after the expiry (e.g. CET, JST).
    #[arg(long, requires = "expiry")]
    time_zone: Option<String>,
    /// Chain of identity identifier, scanned (&/CH…) or typed with its check character.
    #[arg(long)]
    coi: Option<String>,
    /// Number of identical labels (PDF only).
    #[arg(long, default_value_t = 1)]
    copies: usize,
    /// Page layout of the PDF: a4 (10 labels per A4 page) or roll (one label per page).
    #[arg(long, default_value = "a4")]
    sheet: String,
    /// Output file; its extension chooses the format: .pdf or .svg.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: LabelArgs) -> anyhow::Result<ExitCode> {
    let label = content(&args)?;
    let extension = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match extension.as_deref() {
        Some("pdf") => {
            if args.copies == 0 || args.copies > LABELS_PER_DOCUMENT_MAX {
                bail!(
                    "--copies must be 1 to {LABELS_PER_DOCUMENT_MAX}, got {}",
                    args.copies
                );
            }
            let sheet = match args.sheet.as_str() {
                "a4" => SheetLayout::a4(),
                "roll" => SheetLayout::label_roll(),
                other => bail!("--sheet {other:?} is not known: use a4 or roll"),
            };
            render_pdf(&vec![label.clone(); args.copies], &sheet)?
        }
        Some("svg") => {
            if args.copies != 1 {
                bail!("an SVG holds one label: use --copies 1, or write a .pdf");
            }
            render_svg(&label)?.into_bytes()
        }
        _ => bail!(
            "--out {} must end in .pdf or .svg (the extension chooses the format)",
            args.out.display()
        ),
    };
    std::fs::write(&args.out, bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let din = label.din();
    println!(
        "wrote {}: {} label(s) for DIN {} [{}]",
        args.out.display(),
        args.copies,
        din.eye_readable(),
        din.check_character()
    );
    Ok(ExitCode::SUCCESS)
}

fn content(args: &LabelArgs) -> anyhow::Result<LabelContent> {
    let din = Din::parse(&args.din).context("--din")?;
    let mut product = ProductCode::parse(&args.product).context("--product")?;
    if let Some(division) = &args.division {
        product = product.with_division(division).context("--division")?;
    }
    let mut label = LabelContent::new(din, product, &args.description).context("--description")?;
    if let Some(expiry) = &args.expiry {
        let expiry = IsbtDateTime::parse_iso8601(expiry).context("--expiry")?;
        label = label
            .with_expiry(expiry, args.time_zone.as_deref())
            .context("--time-zone")?;
    }
    if let Some(coi) = &args.coi {
        let id = ChainOfIdentityId::parse(coi).context("--coi")?;
        label = label.with_chain_of_identity(id);
    }
    Ok(label)
}
