//! The demo network's training history: who took which courses. The server's demo seeding
//! plays it through the same decisions as the API (see `cellops-server`'s
//! `routes::training::seed_demo_training`).

use crate::curriculum::{Assessment, AssessmentKind};
use crate::decide::Outcome;

/// The trainer who teaches, assesses and signs in the demo.
pub const DEMO_TRAINER: &str = "trainer-ono";
/// QA, who approves the curriculum in the demo.
pub const DEMO_APPROVER: &str = "qa-ito";
/// Where the demo's training takes place (the university's training office at the CPC).
pub const DEMO_SITE: &str = "cpc-kyoto";

/// One demo person's training: courses passed in order, and courses where the media fill
/// failed (enrolled, attended, no certificate).
#[derive(Debug, Clone, Copy)]
pub struct DemoTrainee {
    pub user: &'static str,
    pub courses: &'static [&'static str],
    pub failed_media_fill: &'static [&'static str],
    /// Days before "now" the training took place (sets the expiry dates the demo shows).
    pub days_ago: i64,
}

/// The demo people's training. `op-suzuki` deliberately lacks `cpc-aseptic-processing`
/// (failed media fill), so the demo can show an unqualified operator refused; `courier-abe`
/// trained long ago, so the matrix shows qualifications about to expire.
pub const DEMO_TRAINEES: &[DemoTrainee] = &[
    DemoTrainee {
        user: "op-tanaka",
        courses: &[
            "basic-gmp-documentation",
            "basic-aseptic-technique",
            "basic-cell-culture-qc",
            "adv-automated-culture-device",
            "adv-cryopreservation-transport",
            "adv-viral-vector",
            "adv-genome-editing",
            "role-storage-handling",
        ],
        failed_media_fill: &[],
        days_ago: 60,
    },
    DemoTrainee {
        user: "op-suzuki",
        courses: &[
            "basic-gmp-documentation",
            "basic-cell-culture-qc",
            "adv-automated-culture-device",
            "adv-cryopreservation-transport",
            "adv-viral-vector",
            "adv-genome-editing",
            "role-storage-handling",
        ],
        failed_media_fill: &["basic-aseptic-technique"],
        days_ago: 45,
    },
    DemoTrainee {
        user: "qc-sato",
        courses: &["basic-gmp-documentation", "role-qc-methods"],
        failed_media_fill: &[],
        days_ago: 90,
    },
    DemoTrainee {
        user: "qa-ito",
        courses: &["basic-gmp-documentation", "role-qa-release"],
        failed_media_fill: &[],
        days_ago: 120,
    },
    DemoTrainee {
        user: "dr-yamada",
        courses: &[
            "basic-gmp-documentation",
            "role-hospital-collection",
            "role-bedside-infusion",
        ],
        failed_media_fill: &[],
        days_ago: 100,
    },
    DemoTrainee {
        user: "ns-kato",
        courses: &[
            "basic-gmp-documentation",
            "role-hospital-collection",
            "role-bedside-infusion",
            "role-storage-handling",
        ],
        failed_media_fill: &[],
        days_ago: 30,
    },
    DemoTrainee {
        user: "ns-mori",
        courses: &[
            "basic-gmp-documentation",
            "role-hospital-collection",
            "role-bedside-infusion",
            "role-storage-handling",
        ],
        failed_media_fill: &[],
        days_ago: 200,
    },
    // Hospital Osaka (the demo network's second hospital).
    DemoTrainee {
        user: "dr-nakamura",
        courses: &[
            "basic-gmp-documentation",
            "role-hospital-collection",
            "role-bedside-infusion",
        ],
        failed_media_fill: &[],
        days_ago: 150,
    },
    DemoTrainee {
        user: "ns-ikeda",
        courses: &[
            "basic-gmp-documentation",
            "role-hospital-collection",
            "role-bedside-infusion",
            "role-storage-handling",
        ],
        failed_media_fill: &[],
        days_ago: 40,
    },
    DemoTrainee {
        user: "ns-hayashi",
        courses: &[
            "basic-gmp-documentation",
            "role-hospital-collection",
            "role-bedside-infusion",
        ],
        failed_media_fill: &[],
        days_ago: 80,
    },
    DemoTrainee {
        user: "courier-abe",
        courses: &[
            "basic-gmp-documentation",
            "role-logistics-shipping",
            "role-storage-handling",
        ],
        failed_media_fill: &[],
        days_ago: 715,
    },
];

/// Days before "now" the demo curriculum was imported and approved (before any training).
pub const DEMO_CURRICULUM_DAYS_AGO: i64 = 720;

/// A passing result for `assessment` (the demo's trainees pass with a margin).
pub fn passing_outcome(assessment: &Assessment) -> Outcome {
    match assessment.kind {
        AssessmentKind::Written => {
            Outcome::Score(assessment.pass_mark_percent.unwrap_or(80).clamp(90, 100))
        }
        AssessmentKind::Practical => Outcome::Judged(true),
        AssessmentKind::MediaFill => Outcome::MediaFill {
            filled: assessment.units_min.unwrap_or(1).max(20),
            contaminated: 0,
        },
    }
}

/// A failing media fill for `assessment` (one contaminated unit).
pub fn failing_media_fill(assessment: &Assessment) -> Outcome {
    Outcome::MediaFill {
        filled: assessment.units_min.unwrap_or(1).max(20),
        contaminated: 1,
    }
}
