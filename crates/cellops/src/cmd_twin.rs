//! `cellops twin …` (owned by the process-model work; being written).

#[derive(clap::Args)]
pub struct TwinArgs {}

pub fn run(_args: TwinArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("cellops twin is not available in this build yet")
}
