//! `cellops bench twin` (owned by the process-model work; being written).

use crate::bench::BenchResult;

pub fn run(_quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    anyhow::bail!("cellops bench twin is not available in this build yet")
}
