//! Tests of the public surface of `cellops-isbt`. One binary, one module per area.

mod dates;
mod din;
mod product_coi;
mod roundtrip;
mod scan;

/// Asserts that `result` failed with a message containing every fragment, and returns the
/// message so that a test may look further.
#[track_caller]
pub fn check_err<T: std::fmt::Debug>(
    result: Result<T, cellops_isbt::IsbtError>,
    fragments: &[&str],
) -> String {
    let error = result.expect_err("input should be refused");
    let message = error.to_string();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "message {message:?} lacks {fragment:?}"
        );
    }
    message
}
