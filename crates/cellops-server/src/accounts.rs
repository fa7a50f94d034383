//! Accounts, sessions, API tokens and lockout as a projection of the ledger.
//!
//! Architecture invariant: this state is derived only from ledger records (`apply`), so it
//! can be rebuilt at any time and is the same in every server process. Password hashes are
//! the one exception: they are secrets kept beside the ledger (an exported bundle must not
//! carry them), see `credentials.rs`.

use cellops_domain::{Role, SiteId, Timestamp};
use cellops_ledger::Record;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Consecutive failed logins or e-signatures that lock an account (Part 11 §11.300(d)).
pub const FAILURES_BEFORE_LOCK_MAX: u32 = 5;
/// A session ends after this long without a request (standards.md §6: shared floor terminals).
pub const SESSION_IDLE_US_MAX: i64 = 15 * 60 * 1_000_000;
/// A session ends this long after login whatever the activity.
pub const SESSION_ABSOLUTE_US_MAX: i64 = 12 * 3600 * 1_000_000;
/// Sessions kept in memory; the oldest are forgotten first (they have expired long before).
pub const SESSIONS_MAX: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub full_name: String,
    pub active: bool,
    /// (role, site) pairs.
    pub roles: BTreeSet<(Role, SiteId)>,
    pub must_change_password: bool,
    pub consecutive_failures: u32,
    pub locked: bool,
    pub esig_policy_acknowledged: bool,
}

impl User {
    pub fn has_role(&self, role: Role, site: &SiteId) -> bool {
        self.roles.contains(&(role, site.clone()))
    }

    pub fn has_any_role_at(&self, site: &SiteId) -> bool {
        self.roles.iter().any(|(_, s)| s == site)
    }

    pub fn sites(&self) -> BTreeSet<SiteId> {
        self.roles.iter().map(|(_, s)| s.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub started_at: Timestamp,
    pub ended: bool,
    /// Whether the user has e-signed in this session (§11.200(a)(1): later signings in the
    /// same continuous session need only the password).
    pub signed_once: bool,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub user: String,
    pub name: String,
    pub revoked: bool,
}

/// Payloads of the account events (the ledger stores them as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserPayload {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteId>,
    /// SHA-256 (hex) of a session or API token: never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_change: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl UserPayload {
    pub fn new(user_id: &str) -> UserPayload {
        UserPayload {
            user_id: user_id.to_string(),
            full_name: None,
            role: None,
            site: None,
            token_hash: None,
            name: None,
            must_change: None,
            failure: None,
        }
    }
}

/// Payload of `esig.signed`: what was signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedPayload {
    pub signs_seq: u64,
    /// Hex chain hash of the signed record.
    pub signs_hash: String,
    /// The session the signature was given in.
    pub session_hash: Option<String>,
}

/// The accounts read model.
#[derive(Debug, Default)]
pub struct Accounts {
    last_seq: u64,
    users: BTreeMap<String, User>,
    sessions: HashMap<String, Session>,
    tokens: HashMap<String, ApiToken>,
}

impl Accounts {
    /// The last ledger seq applied.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn session(&self, token_hash: &str) -> Option<&Session> {
        self.sessions.get(token_hash)
    }

    pub fn token(&self, token_hash: &str) -> Option<&ApiToken> {
        self.tokens.get(token_hash)
    }

    /// Applies one record. Records must come in seq order; others are ignored.
    pub fn apply(&mut self, r: &Record) {
        if r.seq <= self.last_seq {
            return;
        }
        self.last_seq = r.seq;
        if r.event_type == "esig.signed" {
            if let Ok(p) = serde_json::from_str::<SignedPayload>(&r.payload) {
                if let Some(s) = p.session_hash.and_then(|h| self.sessions.get_mut(&h)) {
                    s.signed_once = true;
                }
                if let Some(u) = self.users.get_mut(&r.actor) {
                    u.consecutive_failures = 0;
                }
            }
            return;
        }
        let Ok(p) = serde_json::from_str::<UserPayload>(&r.payload) else {
            return;
        };
        let at = r.recorded_at;
        match r.event_type.as_str() {
            "user.created" => {
                self.users.entry(p.user_id.clone()).or_insert(User {
                    id: p.user_id,
                    full_name: p.full_name.unwrap_or_default(),
                    active: true,
                    roles: BTreeSet::new(),
                    must_change_password: false,
                    consecutive_failures: 0,
                    locked: false,
                    esig_policy_acknowledged: false,
                });
            }
            "user.deactivated" => self.with_user(&p.user_id, |u| u.active = false),
            "credential.set" => {
                let must = p.must_change.unwrap_or(false);
                self.with_user(&p.user_id, |u| u.must_change_password = must);
            }
            "role.granted" => {
                if let (Some(role), Some(site)) = (p.role, p.site) {
                    self.with_user(&p.user_id, |u| {
                        u.roles.insert((role, site));
                    });
                }
            }
            "role.revoked" => {
                if let (Some(role), Some(site)) = (p.role, p.site) {
                    self.with_user(&p.user_id, |u| {
                        u.roles.remove(&(role, site));
                    });
                }
            }
            "auth.login" => {
                self.with_user(&p.user_id, |u| u.consecutive_failures = 0);
                self.forget_old_sessions(at);
                if let Some(hash) = p.token_hash {
                    self.sessions.insert(
                        hash,
                        Session {
                            user: p.user_id,
                            started_at: at,
                            ended: false,
                            signed_once: false,
                        },
                    );
                }
            }
            "auth.login_failed" | "esig.failed" => {
                self.with_user(&p.user_id, |u| u.consecutive_failures += 1)
            }
            "auth.logout" => {
                if let Some(s) = p.token_hash.and_then(|h| self.sessions.get_mut(&h)) {
                    s.ended = true;
                }
            }
            "auth.locked" => self.with_user(&p.user_id, |u| u.locked = true),
            "auth.unlocked" => self.with_user(&p.user_id, |u| {
                u.locked = false;
                u.consecutive_failures = 0;
            }),
            "token.issued" => {
                if let Some(hash) = p.token_hash {
                    self.tokens.insert(
                        hash,
                        ApiToken {
                            user: p.user_id,
                            name: p.name.unwrap_or_default(),
                            revoked: false,
                        },
                    );
                }
            }
            "token.revoked" => {
                if let Some(t) = p.token_hash.and_then(|h| self.tokens.get_mut(&h)) {
                    t.revoked = true;
                }
            }
            "esig.policy_acknowledged" => {
                self.with_user(&p.user_id, |u| u.esig_policy_acknowledged = true)
            }
            _ => {}
        }
    }

    fn with_user(&mut self, id: &str, f: impl FnOnce(&mut User)) {
        if let Some(u) = self.users.get_mut(id) {
            f(u);
        }
    }

    fn forget_old_sessions(&mut self, now: Timestamp) {
        if self.sessions.len() < SESSIONS_MAX {
            return;
        }
        let cutoff = now.unix_us() - SESSION_ABSOLUTE_US_MAX;
        self.sessions
            .retain(|_, s| !s.ended && s.started_at.unix_us() >= cutoff);
    }
}

/// Whether a user may sign with `meaning` at `site` (Part 11 §11.10(g) authority checks).
pub fn may_sign(user: &User, meaning: &str, site: &SiteId) -> Result<(), String> {
    let allowed: &[Role] = match meaning {
        "Released" => &[Role::QaReleaser],
        "Ordered" => &[Role::Physician],
        "Approved" => &[Role::QaReviewer, Role::QaReleaser],
        "Reviewed" => &[
            Role::QaReviewer,
            Role::QaReleaser,
            Role::Physician,
            Role::Trainer,
        ],
        "Verified" | "Performed" | "Authored" => &Role::WRITERS,
        other => {
            return Err(format!(
                "meaning {other:?} is unknown: use Reviewed, Approved, Released, Ordered, Verified, Performed or Authored"
            ));
        }
    };
    if allowed.iter().any(|r| user.has_role(*r, site)) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(format!(
            "signing as {meaning:?} at site {site} needs one of the roles {} there",
            names.join(", ")
        ))
    }
}
