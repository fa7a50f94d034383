pub mod auth;
pub mod custody;
pub mod ledger;
pub mod users;
