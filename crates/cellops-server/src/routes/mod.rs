pub mod auth;
pub mod ledger;
pub mod users;
