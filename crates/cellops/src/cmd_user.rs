//! `cellops user add`: create a user (the first administrator, typically) from the shell.

use crate::database;
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_ledger::{Backend, Ledger};
use cellops_server::provision::{NewUser, add_user, parse_role_at_site};
use rand::SeedableRng;
use std::io::BufRead;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create a user with roles per site. The password is read from standard input (one
    /// line), never from the command line.
    Add {
        #[arg(long)]
        database: Option<String>,
        /// The login id (lowercase letters, digits, '-', '_', '.'); never reused.
        #[arg(long)]
        user_id: String,
        /// Full printed name, shown with every signature.
        #[arg(long)]
        name: String,
        /// ROLE@SITE, repeatable, e.g. --role site_admin@cpc-kyoto.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Require a new password at first login (default for accounts made for others).
        #[arg(long)]
        must_change_password: bool,
    },
}

pub fn run(args: UserArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        UserCommand::Add {
            database,
            user_id,
            name,
            roles,
            must_change_password,
        } => {
            let roles = roles
                .iter()
                .map(|r| parse_role_at_site(r).map_err(|e| anyhow::anyhow!("--role: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let url = database::url(database);
            crate::with_backend!(&url, B => add::<B>(&url, &NewUser {
                user_id: &user_id,
                full_name: &name,
                password: &password,
                roles: &roles,
                must_change_password,
            }))
        }
    }
}

fn add<B: Backend>(url: &str, user: &NewUser<'_>) -> anyhow::Result<std::process::ExitCode> {
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
    let exists = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(user.user_id)
        .is_some();
    state.with_rng(|rng| add_user(&state.ledger, rng, "cli", user, exists))?;
    println!("created user {}", user.user_id);
    Ok(std::process::ExitCode::SUCCESS)
}
