//! cellops-qc through its public API: shipped specifications and plans, evaluation with
//! units, corrections and investigations, release readiness, release decisions, the CoA.

use cellops_domain::Timestamp;
use cellops_process::engine::{DeviationId, DeviationState, ReleaseBlocker};
use cellops_qc::coa::{Certificate, CertificateHeader, CertificateRelease};
use cellops_qc::results::investigation_id;
use cellops_qc::*;

fn at(s: i64) -> Timestamp {
    Timestamp::from_unix_us(1_764_000_000_000_000 + s * 1_000_000).unwrap()
}

fn prime() -> Specification {
    SpecCatalog::shipped()
        .unwrap()
        .get("prime-car-t", "1")
        .unwrap()
        .clone()
}

fn num(value: f64, unit: &str) -> EnteredValue {
    EnteredValue::Number {
        value,
        unit: Some(unit.to_string()),
    }
}

fn outcome(o: &str) -> EnteredValue {
    EnteredValue::Outcome(o.to_string())
}

/// A passing entry for every test of `spec` except those in `skip`.
fn passing(spec: &Specification, skip: &[&str]) -> BatchResults {
    let mut results = BatchResults::default();
    let mut seq = 100;
    for t in spec.tests() {
        if skip.contains(&t.id.as_str()) {
            continue;
        }
        let entered = match &t.criterion {
            Criterion::Numeric {
                unit,
                at_least,
                above,
                at_most,
                below,
            } => {
                let value = at_least
                    .or(*above)
                    .map(|v| v * 1.1 + 1.0)
                    .or(at_most.or(*below).map(|v| v / 2.0))
                    .unwrap();
                let value = match (at_most.or(*below), at_least.or(*above)) {
                    (Some(h), Some(l)) => (h + l) / 2.0,
                    _ => value,
                };
                num(value, unit.symbol())
            }
            Criterion::Qualitative { accepted, .. } => outcome(&accepted[0]),
        };
        let (value, verdict) = evaluate(t, &entered).unwrap();
        assert!(verdict.is_pass(), "{}: {verdict:?}", t.id);
        seq += 1;
        results.record(result(seq, &t.id, value, verdict, None));
    }
    results
}

fn result(
    seq: u64,
    test: &str,
    value: MeasuredValue,
    verdict: Verdict,
    corrects: Option<u64>,
) -> ResultRecord {
    ResultRecord {
        seq,
        test: test.to_string(),
        sample: None,
        value,
        verdict,
        method: "m".into(),
        instrument: "FACS-1".into(),
        analyst: "ana".into(),
        recorded_at: at(seq as i64),
        corrects,
        reason: corrects.map(|_| "transcription error".to_string()),
        superseded_by: None,
    }
}

fn ready_process() -> ProcessFacts {
    ProcessFacts::Recorded(vec![])
}

const RECONCILED: LabelFacts = LabelFacts::Counts {
    printed: 3,
    applied: 2,
    destroyed: 1,
};

fn readiness(
    spec: &Specification,
    results: &BatchResults,
    process: &ProcessFacts,
    labels: LabelFacts,
    excursions: &[ExcursionFact],
) -> Readiness {
    release_readiness(&ReleaseInputs {
        spec,
        results,
        process,
        labels,
        excursions,
    })
}

fn codes(r: &Readiness) -> Vec<&'static str> {
    r.blockers.iter().map(|b| b.code).collect()
}

#[test]
fn every_shipped_spec_validates_and_plans_against_its_shipped_recipe() {
    let catalog = SpecCatalog::shipped().unwrap();
    let recipes = cellops_process::shipped::shipped_recipes().unwrap();
    assert_eq!(catalog.specs().len(), 3);
    for spec in catalog.specs() {
        let recipe = recipes
            .iter()
            .find(|r| r.product() == spec.product())
            .unwrap();
        let plan = sample_plan(spec, recipe).unwrap();
        let planned: usize = plan.release_samples.iter().map(|s| s.tests.len()).sum();
        assert_eq!(planned, spec.tests().len(), "every test is sampled once");
        let positions: Vec<_> = plan.release_samples.iter().map(|s| s.position).collect();
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(positions, sorted, "samples in recipe order");
        assert!(
            plan.release_samples.iter().any(|s| s.has_may_follow),
            "sterility may follow"
        );
        assert!(!plan.in_process.is_empty());
    }
    // The MSC spec carries the ISCT markers; the allogeneic lot its editing QC.
    let msc = catalog.get("bm-msc", "1").unwrap();
    for id in [
        "cd73", "cd90", "cd105", "cd34", "cd45", "cd14", "cd19", "hla-dr",
    ] {
        msc.test(id).unwrap();
    }
    let allo = catalog.get("allo-car-t-lot", "1").unwrap();
    for id in [
        "trac-knockout",
        "b2m-knockout",
        "off-target",
        "residual-tcr",
    ] {
        allo.test(id).unwrap();
    }
    let err = catalog.get("prime-car-t", "9").unwrap_err().to_string();
    assert!(err.contains("prime-car-t@1"), "{err}");
}

#[test]
fn a_plan_refuses_another_product_version_or_a_missing_step() {
    let spec = prime();
    let recipes = cellops_process::shipped::shipped_recipes().unwrap();
    let msc = recipes.iter().find(|r| r.product() == "bm-msc").unwrap();
    assert!(matches!(
        sample_plan(&spec, msc),
        Err(QcError::PlanProductMismatch { .. })
    ));
    let text = cellops_qc::shipped::SHIPPED_SPECS[0].1;
    let other_version = Specification::parse(
        "x",
        &text.replace(
            "recipe_versions = [\"1.0.0\"]",
            "recipe_versions = [\"2.0.0\"]",
        ),
    )
    .unwrap();
    let prime_recipe = recipes
        .iter()
        .find(|r| r.product() == "prime-car-t")
        .unwrap();
    let err = sample_plan(&other_version, prime_recipe)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.0.0") && err.contains("2.0.0"), "{err}");
    let moved = Specification::parse(
        "x",
        &text.replacen(
            "sample_point = \"harvest-count\"",
            "sample_point = \"no-such-step\"",
            1,
        ),
    )
    .unwrap();
    let err = sample_plan(&moved, prime_recipe).unwrap_err().to_string();
    assert!(
        err.contains("no-such-step") && err.contains("viability"),
        "{err}"
    );
}

#[test]
fn bad_specifications_are_refused_with_the_field() {
    let text = cellops_qc::shipped::SHIPPED_SPECS[0].1;
    let cases = [
        (
            text.replacen("unit = \"%\"", "unit = \"percentish\"", 1),
            "tests[1].unit",
        ),
        (
            text.replacen("at_least = 70", "at_least = 70\nabove = 60", 1),
            "at_least or above",
        ),
        (
            text.replacen("accepted = [\"conforms\"]", "accepted = [\"fine\"]", 1),
            "tests[0].accepted",
        ),
        (
            text.replacen("id = \"viability\"", "id = \"appearance\"", 1),
            "used twice",
        ),
        (
            text.replacen("\nrelease = \"required\"", "\nrelease = \"later\"", 1),
            "later",
        ),
        (
            text.replacen("below = 5", "below = 5\nunknown_key = 1", 1),
            "unknown_key",
        ),
    ];
    for (bad, needle) in cases {
        let err = match Specification::parse("bad.toml", &bad) {
            Ok(_) => panic!("{needle}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(needle) && err.contains("bad.toml"),
            "{needle}: {err}"
        );
    }
}

#[test]
fn results_pass_or_fail_at_the_limits_and_units_are_checked() {
    let spec = prime();
    let viability = spec.test("viability").unwrap();
    assert!(
        evaluate(viability, &num(70.0, "%")).unwrap().1.is_pass(),
        "at_least is inclusive"
    );
    let (_, v) = evaluate(viability, &num(69.9, "percent")).unwrap();
    let Verdict::Fail { reason } = v else {
        panic!("69.9 % fails")
    };
    assert!(reason.contains(">= 70 %"), "{reason}");
    let vcn = spec.test("vcn").unwrap();
    assert!(
        !evaluate(vcn, &num(5.0, "copies/cell")).unwrap().1.is_pass(),
        "below is exclusive"
    );
    assert!(
        evaluate(vcn, &num(4.99, "copies/cell"))
            .unwrap()
            .1
            .is_pass()
    );
    let potency = spec.test("potency-ifng").unwrap();
    assert!(
        !evaluate(potency, &num(50.0, "pg/mL")).unwrap().1.is_pass(),
        "above is exclusive"
    );

    let errors = [
        (
            evaluate(
                viability,
                &EnteredValue::Number {
                    value: 80.0,
                    unit: None,
                },
            ),
            "unit is missing",
        ),
        (
            evaluate(viability, &num(8.0e5, "cells/mL")),
            "does not match",
        ),
        (evaluate(viability, &num(80.0, "furlongs")), "unknown"),
        (evaluate(viability, &num(180.0, "%")), "meaningful range"),
        (evaluate(viability, &num(f64::NAN, "%")), "finite"),
        (evaluate(viability, &outcome("conforms")), "a number in %"),
        (
            evaluate(spec.test("sterility").unwrap(), &num(1.0, "%")),
            "an `outcome`",
        ),
        (
            evaluate(spec.test("sterility").unwrap(), &outcome("sterile-ish")),
            "not one of",
        ),
    ];
    for (r, needle) in errors {
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    let (_, v) = evaluate(spec.test("sterility").unwrap(), &outcome("growth")).unwrap();
    assert!(!v.is_pass());
}

#[test]
fn a_correction_supersedes_without_erasing_and_an_invalidated_oos_needs_a_retest() {
    let spec = prime();
    let viability = spec.test("viability").unwrap();
    let mut results = passing(&spec, &["viability"]);
    let (v, verdict) = evaluate(viability, &num(62.0, "%")).unwrap();
    results.record(result(1, "viability", v, verdict, None));
    results.open_investigation(Investigation {
        id: investigation_id(1),
        result_seq: 1,
        test: "viability".into(),
        state: InvestigationState::Open,
        opened_at: at(1),
        conclusion: None,
        concluded_by: None,
    });
    let r = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert_eq!(codes(&r), vec!["failed_result", "open_investigation"]);
    // Laboratory error: the result is invalidated; the test is missing until a retest.
    results.conclude(
        "OOS-1",
        InvestigationState::Invalidated,
        "pipetting error",
        "qa",
    );
    let r = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert!(codes(&r).contains(&"missing_result"));
    assert!(r.blockers.iter().any(|b| b.subject == "viability"));
    assert!(r.exceptions.iter().any(|e| e.code == "invalidated_result"));
    let (v, verdict) = evaluate(viability, &num(81.0, "%")).unwrap();
    results.record(result(2, "viability", v, verdict, None));
    // A correction keeps the original and is shown as an exception with its reason.
    let (v, verdict) = evaluate(viability, &num(82.0, "%")).unwrap();
    results.record(result(3, "viability", v, verdict, Some(2)));
    assert_eq!(results.current("viability").unwrap().seq, 3);
    assert_eq!(results.result(2).unwrap().superseded_by, Some(3));
    assert_eq!(
        results
            .results()
            .iter()
            .filter(|r| r.test == "viability")
            .count(),
        3
    );
    let r = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert!(r.releasable(), "{:?}", r.blockers);
    let e = r
        .exceptions
        .iter()
        .find(|e| e.code == "corrected_result")
        .unwrap();
    assert!(e.explanation.contains("transcription error"));
}

#[test]
fn readiness_lists_every_blocker_with_an_explanation() {
    let spec = prime();
    let results = passing(&spec, &[]);
    let clean = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert!(clean.releasable(), "{:?}", clean.blockers);

    let process = ProcessFacts::Recorded(vec![
        ReleaseBlocker::BatchNotCompleted,
        ReleaseBlocker::OpenDeviation {
            deviation: DeviationId::parse("DEV-001").unwrap(),
            state: DeviationState::Investigating,
        },
    ]);
    let excursions = [
        ExcursionFact {
            id: "EXC-1".into(),
            unit: "A999926000001-S1234100".into(),
            summary: "-140 C for 12 min".into(),
            assessment: ExcursionAssessment::NotAssessed,
        },
        ExcursionFact {
            id: "EXC-2".into(),
            unit: "A999926000001-S1234100".into(),
            summary: "-110 C".into(),
            assessment: ExcursionAssessment::Unacceptable,
        },
        ExcursionFact {
            id: "EXC-3".into(),
            unit: "A999926000001-S1234100".into(),
            summary: "-148 C".into(),
            assessment: ExcursionAssessment::Acceptable,
        },
    ];
    let labels = LabelFacts::Counts {
        printed: 4,
        applied: 2,
        destroyed: 1,
    };
    let r = readiness(&spec, &results, &process, labels, &excursions);
    assert_eq!(
        codes(&r),
        vec![
            "batch_not_completed",
            "open_deviation",
            "labels_not_reconciled",
            "excursion_not_assessed",
            "excursion_unacceptable"
        ]
    );
    assert!(
        r.blockers[1].explanation.contains("DEV-001")
            && r.blockers[1].explanation.contains("investigation")
    );
    assert!(r.blockers[2].explanation.contains("1 unaccounted"));
    assert!(r.exceptions.iter().any(|e| e.subject == "EXC-3"));
    assert!(!r.releasable() && !r.releasable_at_risk());

    let r = readiness(
        &spec,
        &results,
        &ProcessFacts::NotRecorded,
        LabelFacts::NonePrinted,
        &[],
    );
    assert_eq!(
        codes(&r),
        vec!["batch_record_missing", "labels_not_printed"]
    );
}

#[test]
fn release_at_risk_needs_only_may_follow_tests_pending_and_the_physicians_acknowledgement() {
    let spec = prime();
    let results = passing(&spec, &["sterility"]);
    let r = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert!(r.releasable_at_risk());
    assert_eq!(r.pending_tests(), vec!["sterility".to_string()]);
    let err = check_release(&r, None).unwrap_err();
    assert!(err[0].contains("at risk"), "{err:?}");
    let mut request = AtRiskRequest {
        seq: 9,
        pending_tests: vec!["sterility".into()],
        clinical_justification: "rapidly progressing disease, no alternative".into(),
        physician: "doc".into(),
        acknowledged: None,
    };
    let err = check_release(&r, Some(&request)).unwrap_err();
    assert!(err[0].contains("not acknowledged"), "{err:?}");
    request.acknowledged = Some(("doc".into(), at(5)));
    assert_eq!(
        check_release(&r, Some(&request)).unwrap(),
        ReleaseKind::ReleasedAtRisk {
            pending_tests: vec!["sterility".into()]
        }
    );
    request.pending_tests = vec!["sterility".into(), "endotoxin".into()];
    assert!(check_release(&r, Some(&request)).unwrap_err()[0].contains("file a new request"));

    // A required test missing is never released, at risk or not.
    let results = passing(&spec, &["sterility", "endotoxin"]);
    let r = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert!(!r.releasable_at_risk());
    request.acknowledged = Some(("doc".into(), at(5)));
    let err = check_release(&r, Some(&request)).unwrap_err();
    assert!(err.iter().any(|e| e.contains("endotoxin")), "{err:?}");

    let results = passing(&spec, &[]);
    let r = readiness(&spec, &results, &ready_process(), RECONCILED, &[]);
    assert_eq!(check_release(&r, None).unwrap(), ReleaseKind::Released);
    assert!(
        ReleaseStatus::ReleasedAtRisk {
            decision_seq: 1,
            signed_by: "qa".into(),
            signed_at: at(1),
            pending_tests: vec![]
        }
        .permits_use()
    );
    assert!(
        !ReleaseStatus::FailedAfterRelease {
            decision_seq: 1,
            failed_tests: vec!["sterility".into()],
            alert_seq: Some(2)
        }
        .permits_use()
    );
}

#[test]
fn the_certificate_is_a_pdf_with_every_test_and_the_signature() {
    let spec = prime();
    let mut results = passing(&spec, &["sterility"]);
    let (v, verdict) = evaluate(spec.test("viability").unwrap(), &num(90.0, "%")).unwrap();
    let first = results.current("viability").unwrap().seq;
    results.record(result(500, "viability", v, verdict, Some(first)));
    let cert = Certificate::build(
        &spec,
        &results,
        CertificateHeader {
            batch: "B-001".into(),
            site: "cpc".into(),
            recipe_version: "1.0.0".into(),
            units: vec!["A999926000001-S1234100".into()],
            ledger_seq: 600,
            generated_at: at(600),
        },
        Some(CertificateRelease {
            status: "Released at risk".into(),
            signer: "qa".into(),
            signer_name: "Mariko Ito".into(),
            signed_at: at(550),
            meaning: "Released".into(),
            pending_tests: vec!["sterility".into()],
            justification: Some("no alternative therapy".into()),
            acknowledged_by: Some("Dr Doc".into()),
        }),
    );
    assert_eq!(cert.rows.len(), spec.tests().len());
    let sterility = cert.rows.iter().find(|r| r.test == "sterility").unwrap();
    assert_eq!(sterility.verdict, "PENDING");
    let viability = cert.rows.iter().find(|r| r.test == "viability").unwrap();
    assert_eq!(viability.result.as_deref(), Some("90 %"));
    assert!(viability.notes[0].contains("transcription error"));
    let pdf = cert.render_pdf().unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coa.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/setup-test-deps");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Certificate of Analysis",
        "B-001",
        "prime-car-t@1",
        "Viability [viability]: 90 % - PASS",
        "Sterility (14-day) [sterility]: pending - PENDING",
        "Mariko Ito",
        "meaning: Released",
        "Pending at release: sterility",
        "transcription error",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}
