//! The machine-readable API description served at `/api/openapi.json` (OpenAPI 3.1).
//! `ROUTES` is the one list of endpoints; a test checks the router serves each of them.

use axum::Json;
use serde_json::{Map, Value, json};

/// One documented endpoint: (method, path, summary, needs authentication, JSON body fields).
pub type RouteDoc = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
);

/// Every documented endpoint: the core [`ROUTES`] and each feature module's list
/// ([`crate::routes::FEATURE_ROUTE_DOCS`]).
pub fn all_routes() -> impl Iterator<Item = &'static RouteDoc> {
    ROUTES.iter().chain(
        crate::routes::FEATURE_ROUTE_DOCS
            .iter()
            .flat_map(|l| l.iter()),
    )
}

/// The core endpoints.
pub const ROUTES: &[RouteDoc] = &[
    ("get", "/health", "Liveness and ledger size", false, &[]),
    ("get", "/metrics", "Prometheus metrics", false, &[]),
    ("get", "/api/openapi.json", "This document", false, &[]),
    (
        "post",
        "/api/auth/login",
        "Sign in; sets the session cookie",
        false,
        &["user_id", "password"],
    ),
    ("post", "/api/auth/logout", "End the session", true, &[]),
    (
        "get",
        "/api/auth/me",
        "The signed-in user and roles",
        true,
        &[],
    ),
    (
        "post",
        "/api/auth/password",
        "Change your password",
        true,
        &["current_password", "new_password"],
    ),
    (
        "post",
        "/api/auth/tokens",
        "Issue an API (bearer) token",
        true,
        &["name", "password"],
    ),
    (
        "post",
        "/api/auth/esig-policy",
        "Acknowledge the e-signature policy",
        true,
        &[],
    ),
    ("get", "/api/users", "Users at your sites", true, &[]),
    (
        "post",
        "/api/users",
        "Create a user with roles per site",
        true,
        &["user_id", "full_name", "password", "roles"],
    ),
    (
        "post",
        "/api/users/{id}/roles",
        "Grant a role at a site",
        true,
        &["role", "site"],
    ),
    (
        "delete",
        "/api/users/{id}/roles/{site}/{role}",
        "Revoke a role at a site",
        true,
        &[],
    ),
    (
        "post",
        "/api/users/{id}/unlock",
        "Unlock a locked account",
        true,
        &[],
    ),
    (
        "post",
        "/api/users/{id}/deactivate",
        "Deactivate an account (the id stays reserved)",
        true,
        &[],
    ),
    (
        "get",
        "/api/ledger/records",
        "Records by stream (query: stream, after, limit)",
        true,
        &[],
    ),
    (
        "get",
        "/api/ledger/records/{seq}",
        "One record with its signatures",
        true,
        &[],
    ),
    (
        "get",
        "/api/ledger/checkpoint",
        "Latest signed checkpoint and public key",
        true,
        &[],
    ),
    (
        "get",
        "/api/ledger/proofs/inclusion",
        "Inclusion proof (query: seq, tree_size)",
        true,
        &[],
    ),
    (
        "get",
        "/api/ledger/proofs/consistency",
        "Consistency proof (query: first, second)",
        true,
        &[],
    ),
    (
        "get",
        "/api/ledger/event-types",
        "Event types the ledger accepts",
        false,
        &[],
    ),
    (
        "post",
        "/api/ledger/corrections",
        "Correct a record (reason required)",
        true,
        &["corrects", "reason", "payload"],
    ),
    (
        "post",
        "/api/notes",
        "Record a note on a stream",
        true,
        &["stream", "site", "text"],
    ),
    (
        "post",
        "/api/signatures",
        "E-sign a record with a meaning",
        true,
        &["seq", "meaning", "password", "user_id"],
    ),
];

pub fn build() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, auth, fields) in all_routes() {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": { "description": "OK" },
                "4XX": { "description": "Client error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                "5XX": { "description": "Server error; nothing was recorded", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        if *auth {
            op["security"] = json!([{ "session": [] }, { "bearer": [] }]);
        }
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if !fields.is_empty() {
            let props: Map<String, Value> =
                fields.iter().map(|f| (f.to_string(), json!({}))).collect();
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "type": "object", "properties": props } } }
            });
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "cellops", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "cellops_session" },
                "bearer": { "type": "http", "scheme": "bearer" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" }, "field": { "type": ["string", "null"] }
                    } } }
                }
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}
