//! The training core through its public API: decisions folded into the read model, status
//! at an instant, the batch engine and bedside adapters, reports.

use cellops_domain::{SiteId, Timestamp, UserId};
use cellops_training::decide::{self, Outcome};
use cellops_training::report;
use cellops_training::state::status_of;
use cellops_training::{
    Curriculum, DAY_US, QualificationMatrix, QualificationStatus, TrainingError, TrainingEvent,
    TrainingState, certificate, is_qualified,
};

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn site() -> SiteId {
    SiteId::parse("cpc").unwrap()
}

fn t0() -> Timestamp {
    Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
}

/// A read model fed in ledger order, as the server does.
struct World {
    state: TrainingState,
    seq: u64,
    codes: u64,
}

impl World {
    fn apply(&mut self, events: Vec<TrainingEvent>) -> Vec<u64> {
        events
            .iter()
            .map(|e| {
                self.seq += 1;
                self.state.apply(self.seq, e);
                self.seq
            })
            .collect()
    }

    /// Imported by `trainer`, approved by `qa`.
    fn new() -> World {
        let mut w = World {
            state: TrainingState::default(),
            seq: 0,
            codes: 0,
        };
        let import = decide::decide_import(
            &w.state,
            cellops_training::curriculum::CLINICAL_CULTURIST_TOML,
            &user("trainer"),
            t0(),
        )
        .unwrap();
        let seq = w.apply(vec![import])[0];
        w.state.apply_signature(seq, "qa", "Approved", t0());
        w
    }

    fn pass_course(&mut self, trainee: &str, course: &str, at: Timestamp) {
        let c = Curriculum::clinical_culturist();
        let course_def = c.course(course).unwrap().clone();
        let (s, tr, by) = (site(), user(trainee), user("trainer"));
        let e = decide::decide_enrol(&self.state, &tr, "clinical-culturist", course, &s, &by, at)
            .unwrap();
        self.apply(vec![e]);
        for m in &course_def.modules {
            let e = decide::decide_attend(&self.state, &tr, course, &m.id, &s, &by, at).unwrap();
            self.apply(vec![e]);
        }
        for a in &course_def.assessments {
            let outcome = cellops_training::demo::passing_outcome(a);
            let events =
                decide::decide_assess(&self.state, &tr, course, &a.id, outcome, None, &s, &by, at)
                    .unwrap();
            let seq = self.apply(events)[0];
            self.state.apply_signature(seq, "trainer", "Reviewed", at);
        }
        self.codes += 1;
        let code = certificate::format_code(self.codes);
        let e = decide::decide_certify(&self.state, &tr, course, &code, &s, &by, at).unwrap();
        self.apply(vec![e]);
    }
}

#[test]
fn status_follows_grants_expiry_suspension_and_reinstatement_in_time() {
    let mut w = World::new();
    let at = t0().plus_us(DAY_US);
    w.pass_course("op", "basic-gmp-documentation", at);
    w.pass_course("op", "basic-aseptic-technique", at);
    let q = "cpc-aseptic-processing";
    assert_eq!(
        w.state.status(&user("op"), q, t0()),
        QualificationStatus::NeverGranted
    );
    assert!(is_qualified(&w.state, &user("op"), q, at));
    let expiry = at.plus_us(365 * DAY_US);
    assert!(is_qualified(&w.state, &user("op"), q, expiry.plus_us(-1)));
    assert!(matches!(
        w.state.status(&user("op"), q, expiry),
        QualificationStatus::Expired { expired_at, .. } if expired_at == expiry
    ));
    let later = at.plus_us(10 * DAY_US);
    let e = decide::decide_suspend(
        &w.state,
        &user("op"),
        q,
        "gowning deviation",
        &site(),
        &user("qa"),
        later,
    )
    .unwrap();
    w.apply(vec![e]);
    assert!(
        is_qualified(&w.state, &user("op"), q, later.plus_us(-1)),
        "the past is unchanged"
    );
    let status = w.state.status(&user("op"), q, later);
    assert!(
        matches!(status, QualificationStatus::Suspended { .. }),
        "{status:?}"
    );
    assert!(
        status
            .refusal_message(&user("op"), q, later)
            .contains("suspended")
    );
    // Suspended twice is a conflict; a manual suspension is reinstated without evidence.
    let again = decide::decide_suspend(&w.state, &user("op"), q, "x", &site(), &user("qa"), later);
    assert!(matches!(again, Err(TrainingError::Conflict { .. })));
    let back = later.plus_us(DAY_US);
    let e = decide::decide_reinstate(
        &w.state,
        &user("op"),
        q,
        "retrained on gowning",
        &site(),
        &user("qa"),
        back,
    )
    .unwrap();
    w.apply(vec![e]);
    assert!(is_qualified(&w.state, &user("op"), q, back));
    // Nobody suspends or reinstates themself.
    let own = decide::decide_suspend(&w.state, &user("op"), q, "x", &site(), &user("op"), back);
    assert!(matches!(own, Err(TrainingError::Invalid { .. })));
}

#[test]
fn held_throughout_a_period_needs_the_qualification_at_every_instant_of_it() {
    let mut w = World::new();
    let at = t0().plus_us(DAY_US);
    w.pass_course("op", "basic-gmp-documentation", at);
    w.pass_course("op", "basic-aseptic-technique", at);
    let (op, q) = (user("op"), "cpc-aseptic-processing");
    let day = |d: i64| at.plus_us(d * DAY_US);
    assert_eq!(
        report::held_throughout(&w.state, &op, q, day(1), day(20)),
        Ok(())
    );
    // Ends after the expiry (365 days): not held at the expiry instant.
    let (when, status) = report::held_throughout(&w.state, &op, q, day(360), day(370)).unwrap_err();
    assert_eq!(when, day(365));
    assert!(
        matches!(status, QualificationStatus::Expired { .. }),
        "{status:?}"
    );
    // Starts before the grant.
    let (when, _) = report::held_throughout(&w.state, &op, q, t0(), day(5)).unwrap_err();
    assert_eq!(when, t0());
    // Suspended on day 30 and reinstated on day 32: held at both ends of days 20..40, but
    // not throughout.
    let e =
        decide::decide_suspend(&w.state, &op, q, "gowning", &site(), &user("qa"), day(30)).unwrap();
    w.apply(vec![e]);
    let e = decide::decide_reinstate(&w.state, &op, q, "retrained", &site(), &user("qa"), day(32))
        .unwrap();
    w.apply(vec![e]);
    assert!(is_qualified(&w.state, &op, q, day(20)) && is_qualified(&w.state, &op, q, day(40)));
    let (when, status) = report::held_throughout(&w.state, &op, q, day(20), day(40)).unwrap_err();
    assert_eq!(when, day(30));
    assert!(
        matches!(status, QualificationStatus::Suspended { .. }),
        "{status:?}"
    );
    assert_eq!(
        report::held_throughout(&w.state, &op, q, day(33), day(40)),
        Ok(())
    );
}

#[test]
fn status_of_no_changes_is_never_granted() {
    assert_eq!(status_of(&[], t0()), QualificationStatus::NeverGranted);
}

#[test]
fn certification_names_each_missing_piece() {
    let mut w = World::new();
    let (s, op, by) = (site(), user("op"), user("trainer"));
    let e = decide::decide_enrol(
        &w.state,
        &op,
        "clinical-culturist",
        "basic-gmp-documentation",
        &s,
        &by,
        t0(),
    )
    .unwrap();
    w.apply(vec![e]);
    let err = decide::decide_certify(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "CC-1",
        &s,
        &by,
        t0(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("not attended module(s) gmp-regulations, documentation, chain-of-identity"),
        "{err}"
    );
    for m in ["gmp-regulations", "documentation", "chain-of-identity"] {
        let e = decide::decide_attend(&w.state, &op, "basic-gmp-documentation", m, &s, &by, t0())
            .unwrap();
        w.apply(vec![e]);
    }
    let events = decide::decide_assess(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "gmp-written",
        Outcome::Score(79),
        None,
        &s,
        &by,
        t0(),
    )
    .unwrap();
    w.apply(events);
    let err = decide::decide_certify(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "CC-1",
        &s,
        &by,
        t0(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("gmp-written (failed"), "{err}");
    let events = decide::decide_assess(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "gmp-written",
        Outcome::Score(80),
        None,
        &s,
        &by,
        t0(),
    )
    .unwrap();
    w.apply(events);
    let e = decide::decide_certify(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "CC-1",
        &s,
        &by,
        t0(),
    )
    .unwrap();
    w.apply(vec![e]);
    // A code is used once.
    let err = decide::decide_certify(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "CC-1",
        &s,
        &by,
        t0(),
    )
    .unwrap_err();
    assert!(matches!(err, TrainingError::Conflict { .. }));
    // Wrong result forms and impossible numbers are refused.
    let e = decide::decide_assess(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "gmp-written",
        Outcome::Score(101),
        None,
        &s,
        &by,
        t0(),
    );
    assert!(e.is_err());
    let e = decide::decide_assess(
        &w.state,
        &op,
        "basic-gmp-documentation",
        "gmp-written",
        Outcome::Judged(true),
        None,
        &s,
        &by,
        t0(),
    );
    assert!(e.unwrap_err().to_string().contains("score_percent"));
}

#[test]
fn unapproved_or_unknown_curricula_cannot_be_used() {
    let mut w = World {
        state: TrainingState::default(),
        seq: 0,
        codes: 0,
    };
    let enrol = |w: &World| {
        decide::decide_enrol(
            &w.state,
            &user("op"),
            "clinical-culturist",
            "basic-gmp-documentation",
            &site(),
            &user("trainer"),
            t0(),
        )
    };
    assert!(matches!(enrol(&w), Err(TrainingError::NotFound { .. })));
    let import = decide::decide_import(
        &w.state,
        cellops_training::curriculum::CLINICAL_CULTURIST_TOML,
        &user("trainer"),
        t0(),
    )
    .unwrap();
    let seq = w.apply(vec![import])[0];
    assert!(matches!(enrol(&w), Err(TrainingError::Conflict { .. })));
    w.state.apply_signature(seq, "trainer", "Approved", t0());
    assert!(
        matches!(enrol(&w), Err(TrainingError::Conflict { .. })),
        "the importer cannot approve"
    );
    w.state.apply_signature(seq, "qa", "Reviewed", t0());
    assert!(
        matches!(enrol(&w), Err(TrainingError::Conflict { .. })),
        "only Approved approves"
    );
    w.state.apply_signature(seq, "qa", "Approved", t0());
    assert!(enrol(&w).is_ok());
    // A changed curriculum under the same version is refused.
    let changed =
        cellops_training::curriculum::CLINICAL_CULTURIST_TOML.replace("hours = 6.0", "hours = 7.0");
    let e = decide::decide_import(&w.state, &changed, &user("trainer"), t0()).unwrap_err();
    assert!(e.to_string().contains("new version"), "{e}");
}

#[test]
fn the_batch_engine_and_the_bedside_check_use_the_same_answer() {
    use cellops_custody::BedsideQualification;
    use cellops_process::engine::{PersonId, QualificationCheck};
    let mut w = World::new();
    let at = t0().plus_us(DAY_US);
    w.pass_course("op", "basic-gmp-documentation", at);
    w.pass_course("op", "basic-aseptic-technique", at);
    w.pass_course("nurse", "basic-gmp-documentation", at);
    w.pass_course("nurse", "role-bedside-infusion", at);
    let when = time::OffsetDateTime::from_unix_timestamp(at.unix_us() / 1_000_000 + 60).unwrap();
    let before = time::OffsetDateTime::from_unix_timestamp(at.unix_us() / 1_000_000 - 60).unwrap();
    let op = PersonId::parse("op").unwrap();
    assert!(QualificationCheck::is_qualified(
        &w.state,
        &op,
        "cpc-aseptic-processing",
        when
    ));
    assert!(!QualificationCheck::is_qualified(
        &w.state,
        &op,
        "cpc-aseptic-processing",
        before
    ));
    assert!(!QualificationCheck::is_qualified(
        &w.state,
        &op,
        "cpc-genome-editing",
        when
    ));
    let matrix = QualificationMatrix::demo();
    let bedside = cellops_training::BedsideChecker {
        state: &w.state,
        matrix: &matrix,
    };
    let hosp = SiteId::parse("hosp").unwrap();
    let later = at.plus_us(60_000_000);
    assert!(bedside.is_qualified(&user("nurse"), &hosp, later));
    assert!(!bedside.is_qualified(&user("op"), &hosp, later));
}

#[test]
fn reports_answer_from_the_record() {
    let mut w = World::new();
    let at = t0().plus_us(DAY_US);
    w.pass_course("op", "basic-gmp-documentation", at);
    let people = vec![
        (user("op"), "Tanaka, \"Hiro\"".to_string()),
        (user("qa"), "Ito".to_string()),
    ];
    let quals = vec!["custody-handling".to_string(), "qa-release".to_string()];
    let m = report::training_matrix(&w.state, &site(), &people, &quals, at);
    let csv = m.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "user,name,custody-handling,custody-handling expires_at,qa-release,qa-release expires_at"
    );
    assert!(
        lines[1]
            .starts_with("op,\"Tanaka, \"\"Hiro\"\"\",qualified,2028-01-02T00:00:00.000000Z,none,"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "qa,Ito,none,,none,");
    let soon = at.plus_us(720 * DAY_US);
    let exp = report::expiring(&w.state, &people, &quals, soon, 30);
    assert_eq!(exp.len(), 1);
    assert_eq!(exp[0].days_left, 10);
    assert_eq!(
        report::qualified_at(&w.state, "custody-handling", at).len(),
        1
    );
    assert_eq!(
        report::qualified_at(&w.state, "custody-handling", t0()).len(),
        0
    );
    // Steps from batch record payloads.
    let payload = serde_json::json!({"performer": "op", "action": "custody.scan", "at": at});
    let step = report::step_of(7, "x", &payload, &site(), t0()).unwrap();
    assert_eq!(step.at, at);
    assert!(report::step_of(8, "x", &serde_json::json!({"by": "op"}), &site(), t0()).is_none());
    let no_performer = report::step_of(
        9,
        "x",
        &serde_json::json!({"qualification": "qa-release"}),
        &site(),
        t0(),
    )
    .unwrap();
    let check = report::check_steps(
        &w.state,
        &QualificationMatrix::demo(),
        vec![step, no_performer],
    );
    assert!(!check.all_qualified);
    assert!(check.steps[0].qualified);
    assert!(
        check.steps[1]
            .problem
            .as_deref()
            .unwrap()
            .contains("no performer")
    );
    assert!(
        !report::check_steps(&w.state, &QualificationMatrix::demo(), vec![]).all_qualified,
        "no steps proves nothing"
    );
}
