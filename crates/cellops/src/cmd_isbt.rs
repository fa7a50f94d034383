//! `cellops isbt …` (owned by the ISBT 128 work; being written).

#[derive(clap::Args)]
pub struct IsbtArgs {}

pub fn run(_args: IsbtArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("cellops isbt is not available in this build yet")
}
