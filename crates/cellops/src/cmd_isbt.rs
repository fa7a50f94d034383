//! `cellops isbt check <code>` and `cellops isbt check-char <13 DIN characters>`.
//!
//! Exit codes: `check` 0 valid, 1 invalid (reason on stderr); `check-char` 0 with the check
//! character alone on stdout, 2 when the input is not 13 valid DIN characters.

use std::process::ExitCode;

use cellops_isbt::{ChainOfIdentityId, DataStructure, Din, FlagKind, parse_scan};

/// Exit code of `check` for an invalid code.
const EXIT_INVALID: u8 = 1;
/// Exit code of `check-char` for input that is not 13 DIN characters.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(clap::Args)]
pub struct IsbtArgs {
    #[command(subcommand)]
    command: IsbtCommand,
}

#[derive(clap::Subcommand)]
enum IsbtCommand {
    /// Validate an ISBT 128 code: a scanned data structure or several (e.g. a DataMatrix
    /// read), a typed DIN (`G1234 17 654321 A`) or a typed chain of identity identifier.
    /// Exit 0 and say what it is when valid; exit 1 with the reason when not.
    Check {
        /// The code as scanned or typed (quote it if it holds spaces or '&').
        code: String,
    },
    /// Print the keyboard check character (ISO/IEC 7064 MOD 37-2) of 13 DIN characters.
    /// Exit 2 with the reason if they are not a valid DIN.
    CheckChar {
        /// The 13 DIN characters, e.g. G123417654321.
        din: String,
    },
}

pub fn run(args: IsbtArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        IsbtCommand::Check { code } => Ok(check(&code)),
        IsbtCommand::CheckChar { din } => Ok(check_char(&din)),
    }
}

fn check(code: &str) -> ExitCode {
    match describe(code) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("invalid: {error}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn check_char(din: &str) -> ExitCode {
    match Din::parse_characters(din) {
        Ok(din) => {
            println!("{}", din.check_character());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("invalid: {error}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// One line per data structure found in `code`, or why it is not valid.
fn describe(code: &str) -> Result<Vec<String>, cellops_isbt::IsbtError> {
    let trimmed = code.trim_start_matches(' ');
    let typed = trimmed.starts_with(|ch: char| ch.is_ascii_alphanumeric());
    if !typed {
        // Scanned data structures start with '=' or '&'; anything else that is not typed
        // letters or digits gets the scanner's "does not start a code" reason.
        let scan = parse_scan(code)?;
        let mut lines = Vec::with_capacity(scan.structures().len() + 1);
        if let Some(header) = scan.compound() {
            lines.push(format!(
                "valid compound message: {} data structures, sequence {:03}",
                header.count(),
                header.sequence_code()
            ));
        }
        lines.extend(scan.structures().iter().map(describe_structure));
        return Ok(lines);
    }
    if trimmed.starts_with("CH") {
        let id = ChainOfIdentityId::parse(code)?;
        return Ok(vec![format!(
            "valid chain of identity identifier (typed): {id} [{}], issued by FIN {} in year {:02}",
            id.check_character(),
            id.fin(),
            id.nominal_year()
        )]);
    }
    let din = Din::parse(code)?;
    Ok(vec![format!(
        "valid DIN (typed): {} [{}], FIN {}, year {:02}, sequence {:06}",
        din.eye_readable(),
        din.check_character(),
        din.fin(),
        din.nominal_year(),
        din.sequence()
    )])
}

fn describe_structure(structure: &DataStructure) -> String {
    let kind = structure.kind();
    let what = format!("valid {} {:03}", kind.short_name(), kind.number());
    match structure {
        DataStructure::Din(s) => {
            let din = s.din();
            let flags = match s.flags().kind() {
                FlagKind::NotUsed => "none".to_string(),
                FlagKind::IccbbaDefined(v) => format!("{v:02} (ICCBBA-defined)"),
                FlagKind::LocallyDefined(v) => format!("{v:02} (locally defined)"),
                FlagKind::CheckValue => format!("{:02} (check value)", s.flags().value_for(&din)),
            };
            format!(
                "{what}: {} [{}], FIN {}, year {:02}, sequence {:06}, flags {flags}",
                din.eye_readable(),
                din.check_character(),
                din.fin(),
                din.nominal_year(),
                din.sequence()
            )
        }
        DataStructure::ProductCode(code) => format!(
            "{what}: {}, product description code {}, collection type {}, division {}",
            code.as_str(),
            code.description_code(),
            code.collection_type(),
            code.division()
        ),
        DataStructure::ExpirationDate(d)
        | DataStructure::CollectionDate(d)
        | DataStructure::ProductionDate(d) => format!("{what}: {d}"),
        DataStructure::ExpirationDateTime(t)
        | DataStructure::CollectionDateTime(t)
        | DataStructure::ProductionDateTime(t) => format!("{what}: {t} (local time)"),
        DataStructure::ProductDivisions(d) => format!("{what}: {}", d.as_str()),
        DataStructure::ProcessingFacility(p) => format!(
            "{what}: FIN(P) {}, facility product code {}",
            p.fin(),
            p.facility_product_code()
        ),
        DataStructure::ProcessorProduct(p) => format!(
            "{what}: FIN(P) {}, facility product code {}, product description code {}",
            p.facility().fin(),
            p.facility().facility_product_code(),
            p.description_code()
        ),
        DataStructure::ChainOfIdentity(id) => format!(
            "{what}: {id} [{}], issued by FIN {} in year {:02}",
            id.check_character(),
            id.fin(),
            id.nominal_year()
        ),
    }
}
