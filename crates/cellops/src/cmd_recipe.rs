//! `cellops recipe …`: validate recipe files, show what changed between two versions, and
//! print the content hash that QA approves.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cellops_process::Recipe;
use cellops_process::recipe::diff::diff;

/// Arguments of `cellops recipe`.
#[derive(clap::Args)]
pub struct RecipeArgs {
    #[command(subcommand)]
    command: RecipeCommand,
}

#[derive(clap::Subcommand)]
enum RecipeCommand {
    /// Check recipe files; print every problem as file:line:column: field: message.
    /// Exit status 0 when all are valid, 1 otherwise.
    Validate {
        /// Recipe files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List what changed from OLD to NEW (change control).
    Diff {
        /// The earlier version.
        old: PathBuf,
        /// The later version.
        new: PathBuf,
    },
    /// Print the canonical content hash that identifies each recipe's exact content.
    Hash {
        /// Recipe files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs `cellops recipe …`.
pub fn run(args: RecipeArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match args.command {
        RecipeCommand::Validate { files } => validate(&mut out, &files),
        RecipeCommand::Diff { old, new } => show_diff(&mut out, &old, &new),
        RecipeCommand::Hash { files } => hash(&mut out, &files),
    }
}

/// Reads and parses one file; on failure prints the problems and returns `None`.
fn load(out: &mut impl Write, path: &Path) -> anyhow::Result<Option<Recipe>> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            writeln!(out, "{name}: cannot read the file: {error}")?;
            return Ok(None);
        }
    };
    match Recipe::parse(&name, &text) {
        Ok(recipe) => Ok(Some(recipe)),
        Err(errors) => {
            writeln!(out, "{errors}")?;
            Ok(None)
        }
    }
}

fn validate(out: &mut impl Write, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut all_valid = true;
    for path in files {
        match load(out, path)? {
            Some(recipe) => writeln!(
                out,
                "{}: ok: {} {} {}",
                path.display(),
                recipe.product(),
                recipe.version(),
                recipe.content_hash()
            )?,
            None => all_valid = false,
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn show_diff(out: &mut impl Write, old_path: &Path, new_path: &Path) -> anyhow::Result<ExitCode> {
    let old = load(out, old_path)?;
    let new = load(out, new_path)?;
    let (Some(old), Some(new)) = (old, new) else {
        return Ok(ExitCode::FAILURE);
    };
    let changes = diff(&old, &new);
    writeln!(
        out,
        "{} {} -> {} {}: {} change(s)",
        old.product(),
        old.version(),
        new.product(),
        new.version(),
        changes.len()
    )?;
    if !changes.is_empty() && old.version() == new.version() && old.product() == new.product() {
        writeln!(
            out,
            "warning: the content changed but the version did not (rule: a change is a new version)"
        )?;
    }
    for change in &changes {
        writeln!(out, "{change}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn hash(out: &mut impl Write, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut all_valid = true;
    for path in files {
        match load(out, path).with_context(|| format!("hashing {}", path.display()))? {
            Some(recipe) => writeln!(
                out,
                "{}  {} {}  {}",
                recipe.content_hash(),
                recipe.product(),
                recipe.version(),
                path.display()
            )?,
            None => all_valid = false,
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
