pub mod auth;
pub mod custody;
pub mod labels;
pub mod ledger;
pub mod users;

use crate::error::{ApiError, ApiResult};
use cellops_domain::SiteId;

/// Parses a site id from request input; the error names `field`.
pub(crate) fn parse_site(field: &str, text: &str) -> ApiResult<SiteId> {
    SiteId::parse(text).map_err(|e| ApiError::bad_request(field, e.to_string()))
}
