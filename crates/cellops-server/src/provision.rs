//! Creating users outside a request: the first administrator (`cellops user add`), the demo
//! data (`cellops serve --demo`), and the HTTP handler all go through [`add_user`].

use crate::accounts::UserPayload;
use crate::credentials::{check_password_policy, hash_password, secret_name_password};
use crate::routes::auth::user_event;
use cellops_domain::{Role, SiteId, UserId};
use cellops_ledger::{AppendRequest, Backend, Ledger, LedgerError};
use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn invalid(field: &str, rule: impl Into<String>) -> ProvisionError {
    ProvisionError::Invalid {
        field: field.to_string(),
        rule: rule.into(),
    }
}

/// A user to create, with roles per site.
pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub full_name: &'a str,
    pub password: &'a str,
    pub roles: &'a [(Role, SiteId)],
    /// Whether the password must be changed at first login (true when an administrator
    /// chose it).
    pub must_change_password: bool,
}

/// Validates and records a new user (blocking: call from a blocking thread). `exists` says
/// whether the id was ever used; ids are never reused.
pub fn add_user<B: Backend>(
    ledger: &Ledger<B>,
    rng: &mut impl RngCore,
    actor: &str,
    user: &NewUser<'_>,
    exists: bool,
) -> Result<(), ProvisionError> {
    let id = UserId::parse(user.user_id).map_err(|e| invalid("user_id", e.to_string()))?;
    if user.full_name.trim().is_empty() {
        return Err(invalid(
            "full_name",
            "the printed name shown with every signature is required",
        ));
    }
    check_password_policy(user.password).map_err(|m| invalid("password", m))?;
    if user.roles.is_empty() {
        return Err(invalid("roles", "grant at least one role at one site"));
    }
    if exists {
        return Err(invalid(
            "user_id",
            format!(
                "{id} exists or existed: user ids are never reused (Part 11 §11.100); choose another"
            ),
        ));
    }
    // The hash is stored first: a crash between the two leaves an unused secret, never a
    // user without a password.
    let phc = hash_password(user.password, rng);
    ledger.read(|b| b.secret_put(&secret_name_password(id.as_str()), &phc))?;
    let mut created = UserPayload::new(id.as_str());
    created.full_name = Some(user.full_name.trim().to_string());
    let mut records = vec![user_event("user.created", &created, actor)];
    for (role, site) in user.roles {
        let mut p = UserPayload::new(id.as_str());
        p.role = Some(*role);
        p.site = Some(site.clone());
        records.push(user_event("role.granted", &p, actor));
    }
    let mut credential = UserPayload::new(id.as_str());
    credential.must_change = Some(user.must_change_password);
    records.push(user_event("credential.set", &credential, actor));
    ledger.append(AppendRequest {
        records,
        idempotency_key: None,
    })?;
    Ok(())
}

/// Parses `role@site` (e.g. `operator@cpc-kyoto`).
pub fn parse_role_at_site(text: &str) -> Result<(Role, SiteId), String> {
    let (role, site) = text
        .split_once('@')
        .ok_or_else(|| format!("{text:?}: write ROLE@SITE, e.g. operator@cpc-kyoto"))?;
    let role = role.parse::<Role>().map_err(|e| e.to_string())?;
    let site = SiteId::parse(site).map_err(|e| e.to_string())?;
    Ok((role, site))
}

/// The demo network's sites and their ISBT 128 facility numbers (ICCBBA reserves
/// A9990–A9999 for validation and testing): the university CPC, two hospitals, the QC lab and
/// a licensee company that runs the same recipes at its own site.
pub const DEMO_FACILITIES: [(&str, &str); 5] = [
    ("cpc-kyoto", "A9990"),
    ("hosp-kyoto", "A9991"),
    ("qc-kyoto", "A9992"),
    ("hosp-osaka", "A9993"),
    ("lic-tokyo", "A9994"),
];

/// The demo's people: (user id, full name, roles). Passwords are `demo-<user id>-2026`.
pub const DEMO_USERS: &[(&str, &str, &[&str])] = &[
    (
        "admin",
        "Aiko Admin",
        &[
            "site_admin@cpc-kyoto",
            "site_admin@hosp-kyoto",
            "site_admin@qc-kyoto",
            "site_admin@hosp-osaka",
        ],
    ),
    ("op-tanaka", "Hiroshi Tanaka", &["operator@cpc-kyoto"]),
    ("op-suzuki", "Yumi Suzuki", &["operator@cpc-kyoto"]),
    (
        "qc-sato",
        "Kenji Sato",
        &["qc_analyst@qc-kyoto", "qc_analyst@cpc-kyoto"],
    ),
    (
        "qa-ito",
        "Mariko Ito",
        &["qa_reviewer@cpc-kyoto", "qa_releaser@cpc-kyoto"],
    ),
    ("dr-yamada", "Taro Yamada", &["physician@hosp-kyoto"]),
    ("ns-kato", "Sachiko Kato", &["nurse@hosp-kyoto"]),
    ("ns-mori", "Emi Mori", &["nurse@hosp-kyoto"]),
    ("dr-nakamura", "Ken Nakamura", &["physician@hosp-osaka"]),
    ("ns-ikeda", "Rina Ikeda", &["nurse@hosp-osaka"]),
    ("ns-hayashi", "Mai Hayashi", &["nurse@hosp-osaka"]),
    (
        "courier-abe",
        "Jun Abe",
        &[
            "logistics@cpc-kyoto",
            "logistics@hosp-kyoto",
            "logistics@hosp-osaka",
        ],
    ),
    (
        "lic-admin",
        "Sora Fujita",
        &["site_admin@lic-tokyo", "auditor@lic-tokyo"],
    ),
    ("lic-op-kimura", "Daichi Kimura", &["operator@lic-tokyo"]),
    ("trainer-ono", "Keiko Ono", &["trainer@cpc-kyoto"]),
    (
        "auditor-ueda",
        "Shin Ueda",
        &[
            "auditor@cpc-kyoto",
            "auditor@hosp-kyoto",
            "auditor@qc-kyoto",
            "auditor@hosp-osaka",
        ],
    ),
];

pub fn demo_password(user_id: &str) -> String {
    format!("demo-{user_id}-2026")
}

/// Creates the demo users unless any user exists. Returns how many were created.
pub fn seed_demo<B: Backend>(
    ledger: &Ledger<B>,
    rng: &mut impl RngCore,
    any_user_exists: bool,
) -> Result<usize, ProvisionError> {
    if any_user_exists {
        return Ok(0);
    }
    for (id, name, roles) in DEMO_USERS {
        let roles: Vec<(Role, SiteId)> = roles
            .iter()
            .map(|r| parse_role_at_site(r).expect("demo roles are valid"))
            .collect();
        let password = demo_password(id);
        add_user(
            ledger,
            rng,
            "demo-seed",
            &NewUser {
                user_id: id,
                full_name: name,
                password: &password,
                roles: &roles,
                must_change_password: false,
            },
            false,
        )?;
    }
    Ok(DEMO_USERS.len())
}
