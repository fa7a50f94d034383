pub mod auth;
pub mod custody;
pub mod labels;
pub mod ledger;
pub mod users;
