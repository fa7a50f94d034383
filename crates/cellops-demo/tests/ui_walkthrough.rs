//! The web UI in a real browser on a whole patient: the demo network walks an autologous
//! PRIME CAR-T patient through the API (collection, batch, QC, release, shipment, receipt)
//! to the bedside in a simulated clock; the same app is then served over HTTP and headless
//! Chromium does the rest as the hospital's nurses would: the order timeline with each
//! milestone's source module, the thaw signature, an identity mismatch at the bedside that
//! must show STOP (and be recorded), the two-person verification, the infusion; the batch
//! view of the order's batch; and the same screens in Japanese with no English fallback.
//!
//! Nothing is skipped: without `chromium` and `chromedriver` the test fails and says how to
//! install them. Screenshots go to `<target>/screenshots/`.

#[allow(dead_code)]
#[path = "../../cellops-server/tests/ui/browser.rs"]
mod browser;

use browser::Browser;
use cellops_demo::bank::Bank;
use cellops_demo::flow::{Patient, Product, Scenario, scan_text};
use cellops_demo::network::{
    COLLECTED_CODE, COURIER, CPC, DEWAR, HOSPITALS, Network, OPERATOR, PRODUCT_CODE, QA,
    QC_ANALYST, demo_epoch,
};
use cellops_ledger::Backend;
use cellops_ledger::sqlite::Sqlite;
use serde_json::json;

/// The demo people's passwords (the browser harness signs in with these).
pub fn password_for(user: &str) -> String {
    cellops_server::provision::demo_password(user)
}

fn count(net: &Network<Sqlite>, event_type: &str) -> usize {
    let records =
        tokio::task::block_in_place(|| net.state().ledger.read(|b| b.records(1, 1_000_000)))
            .unwrap();
    records
        .iter()
        .filter(|r| r.event_type == event_type)
        .count()
}

/// Signs in as `user` (after the clock moved on, the last session may have expired).
async fn sign_in(b: &Browser, user: &str) {
    b.goto("/ui/login").await;
    b.client.delete_all_cookies().await.unwrap();
    b.login(user).await;
}

async fn value(b: &Browser, css: &str) -> String {
    b.find(css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Takes over `unit` from `from` on the scan page's hand-off form, at the signed-in user's
/// site, with the temperature read.
async fn take_over(b: &Browser, unit: &str, from: &str, temperature: &str) {
    b.goto("/ui/scan").await;
    b.fill("#ho-unit", unit).await;
    b.fill("#ho-from", from).await;
    b.fill("#ho-temperature", temperature).await;
    b.click_nav("#handoff-submit").await;
}

/// Advances `p` until the step due next is `step`, then the clock to when it is due.
async fn walk_to(net: &mut Network<Sqlite>, bank: &mut Bank, p: &mut Patient, step: &str) {
    while p.next_step() != step {
        assert!(!p.done(), "never reached {step}");
        net.advance_to(p.due).await;
        if let Err(e) = p.advance(net, bank).await {
            panic!("{e:#}");
        }
    }
    net.advance_to(p.due).await;
}

/// Texts of the English file that must not appear on a Japanese page (as in the server's
/// UI tests): phrases and capitalised words that differ from the Japanese file.
fn english_only_texts() -> Vec<String> {
    let en: std::collections::BTreeMap<String, String> =
        toml::from_str(include_str!("../../cellops-server/src/ui/locales/en.toml")).unwrap();
    let ja: std::collections::BTreeMap<String, String> =
        toml::from_str(include_str!("../../cellops-server/src/ui/locales/ja.toml")).unwrap();
    en.iter()
        .filter(|(k, v)| ja.get(*k) != Some(v))
        .filter(|(_, v)| v.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 4)
        .filter(|(_, v)| v.contains(' ') || v.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Checks the page for English UI texts. The approved recipe's own phase and step names
/// (`.recipe-text`) are the controlled document's words, English in the shipped recipes,
/// and are left out.
async fn assert_no_english(b: &Browser, path: &str, english: &[String]) {
    let main = b
        .js(
            "const m = document.querySelector('main').cloneNode(true);
             m.querySelectorAll('.recipe-text').forEach(e => e.remove());
             return m.textContent;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    let header = b.text("header").await;
    for text in english {
        assert!(
            !main.contains(text.as_str()) && !header.contains(text.as_str()),
            "{path} shows the English text {text:?} in the Japanese UI:\n{main}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autologous_order_walks_to_infusion_in_the_browser_and_a_wrong_wristband_stops() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("walk.db").display());
    let mut net = Network::<Sqlite>::open(&url, demo_epoch(), 11)
        .await
        .unwrap();
    let mut bank = Bank::default();
    // Qualifications that lapse within the weeks this test runs are renewed first.
    cellops_demo::training::requalify_expiring(&mut net, 60)
        .await
        .unwrap();
    let kyoto = HOSPITALS[0];
    let [nurse, second] = kyoto.nurses;
    // Its shipment has a temperature excursion, which QA assesses and accepts on the way.
    let scenario = Scenario {
        excursion: true,
        ..Scenario::default()
    };
    let mut p = Patient::new(Product::PrimeCarT, kyoto, scenario, net.now());
    let base = browser::listen(cellops_server::app(net.state().clone())).await;
    let b = Browser::start(&base).await;

    // The physician enrols the patient, places the order on the new-order form and signs
    // it in the signature dialog.
    sign_in(&b, kyoto.physician).await;
    b.click_nav("nav a[href='/ui/orders']").await;
    b.find("#new-order-form").await;
    b.click_nav("#no-enrol").await;
    let subject = value(&b, "#no-subject").await;
    assert!(subject.starts_with("S-"), "{subject}");
    b.js(
        "document.querySelector('#no-manufacturer').value = arguments[0];",
        vec![json!(CPC)],
    )
    .await;
    b.fill("#no-dose", "1e8").await;
    b.click_nav("#no-submit").await;
    b.find("#sign-form").await;
    let order = b.text("#order-facts code").await;
    b.fill("#sign-password", &password_for(kyoto.physician))
        .await;
    if b.exists_now("#sign-acknowledge").await {
        b.click("#sign-acknowledge").await;
    }
    b.click_nav("#sign-submit").await;
    b.find("#order-stage[data-stage='signed']").await;
    assert_eq!(count(&net, "order.placed"), 1);
    b.screenshot("walk-order-signed").await;
    p.placed_elsewhere(&mut net, &subject, &order)
        .await
        .unwrap();

    // On the booked day the nurse registers the collection bag for the patient (a DIN
    // allocated at the hospital, the unit labelled) on the scan page, then records the
    // collection on the order's collection form.
    net.advance_to(p.due).await;
    sign_in(&b, nurse).await;
    b.goto("/ui/scan").await;
    b.fill("#nu-product", COLLECTED_CODE).await;
    b.fill("#nu-patient", &subject).await;
    b.js(
        "document.querySelector('#nu-expires').value = arguments[0];",
        vec![json!(net.in_hours(24 * 60)[..16].to_string())],
    )
    .await;
    b.fill("#nu-location", &format!("{}/room-1", kyoto.site))
        .await;
    b.click_nav("#new-unit-submit").await;
    let collected = b
        .find("#new-unit-code")
        .await
        .attr("data-code")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no unit registered: {}", "#new-unit-code"));
    assert!(collected.ends_with(COLLECTED_CODE), "{collected}");
    b.goto(&format!("/ui/orders?order={order}")).await;
    b.find("#collection-form").await;
    b.fill("#col-unit", &collected).await;
    b.fill("#col-volume", "180").await;
    b.fill("#col-cd3", "2.6e9").await;
    b.click_nav("#col-submit").await;
    b.find("#order-stage[data-stage='collected']").await;
    assert_eq!(count(&net, "order.collected"), 1);
    b.screenshot("walk-collected").await;
    // The courier takes the bag from the nurse on the scan page's hand-off form (at the
    // hospital: the site switched) and signs the hand-off for the CPC on the order page; at
    // the CPC the operator takes it over (a wrong giver first: refused) and signs the
    // receipt and identity check on the order page.
    sign_in(&b, COURIER).await;
    b.find("#site-select option[value='hosp-kyoto']")
        .await
        .click()
        .await
        .unwrap();
    b.find("#who").await;
    for _ in 0..50 {
        if b.text("#who").await.contains("hosp-kyoto") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    take_over(&b, &collected, nurse, "4").await;
    assert!(
        b.text("#flash-notice").await.contains("Hand-off recorded"),
        "{}",
        b.text("main").await
    );
    p.handed_over_elsewhere(&collected, net.now()).unwrap();
    b.goto(&format!("/ui/orders?order={order}")).await;
    b.find("#step-form[data-milestone='shipped_to_cpc']").await;
    b.fill("#step-password", &password_for(COURIER)).await;
    if b.exists_now("#step-acknowledge").await {
        b.click("#step-acknowledge").await;
    }
    b.click_nav("#step-submit").await;
    b.find("#order-stage[data-stage='shipped_to_cpc']").await;
    p.shipped_elsewhere(net.now()).unwrap();
    net.advance_to(p.due).await;
    sign_in(&b, OPERATOR).await;
    let handoffs = count(&net, "custody.handed_off");
    take_over(&b, &collected, nurse, "4").await;
    assert!(
        b.exists_now("#handoff-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(count(&net, "custody.handed_off"), handoffs);
    assert_eq!(value(&b, "#ho-unit").await, collected);
    take_over(&b, &collected, COURIER, "4").await;
    assert_eq!(count(&net, "custody.handed_off"), handoffs + 1);
    b.goto(&format!("/ui/orders?order={order}")).await;
    // A wrong password signs nothing.
    b.fill("#step-password", "not the password").await;
    let failed = count(&net, "esig.failed");
    b.click_nav("#step-submit").await;
    b.find("#flash-error").await;
    assert_eq!(count(&net, "esig.failed"), failed + 1);
    b.find("#order-stage[data-stage='shipped_to_cpc']").await;
    b.find("#step-form[data-milestone='received_at_cpc']").await;
    b.fill("#step-password", &password_for(OPERATOR)).await;
    b.click_nav("#step-submit").await;
    b.find("#order-stage[data-stage='received_at_cpc']").await;
    b.screenshot("walk-received-at-cpc").await;
    p.received_elsewhere(&mut net).await.unwrap();

    // With the batch started and the material seeded (API) the operator does the batch's
    // first steps on the batch view: the receipt check (a wrong password confirms
    // nothing; the right one signs once), the receipt count's results, the kit with its
    // material lots.
    walk_to(&mut net, &mut bank, &mut p, "culture").await;
    let batch = p.batch().to_string();
    b.goto(&format!("/ui/batch?batch={batch}")).await;
    b.find("#start-form input[name='step'][value='receive-apheresis']")
        .await;
    b.click_nav("#start-submit").await;
    b.find("#batch-steps li[data-step='receive-apheresis'][data-state='active']")
        .await;
    let signatures = count(&net, "esig.signed");
    b.fill("#c-password", "not the password").await;
    b.click_nav("#confirm-submit").await;
    b.find("#flash-error").await;
    assert_eq!(count(&net, "esig.signed"), signatures);
    b.find("#batch-steps li[data-step='receive-apheresis'][data-state='active']")
        .await;
    b.screenshot("batch-confirm").await;
    b.fill("#c-password", &password_for(OPERATOR)).await;
    b.click_nav("#confirm-submit").await;
    assert!(b.text("#flash-notice").await.contains("confirmed"));
    b.find("#batch-steps li[data-step='receive-apheresis'][data-state='done']")
        .await;
    assert_eq!(count(&net, "esig.signed"), signatures + 1);
    b.click_nav("#start-submit").await;
    b.fill("input[data-parameter='viability_percent']", "92.5")
        .await;
    b.fill("input[data-parameter='cd3_total_viable_cells']", "2.0e9")
        .await;
    b.screenshot("walk-receipt-count").await;
    b.click_nav("#results-submit").await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("results are recorded"),
        "{}",
        b.text("main").await
    );
    for (material, lot) in [
        ("tubing-set", "T-0042"),
        ("cd4-cd8-microbeads", "MB-7"),
        ("culture-medium", "CM-11"),
    ] {
        b.fill(&format!("input[data-material='{material}']"), lot)
            .await;
    }
    b.click_nav("#start-submit").await;
    b.find("#batch-steps li[data-step='install-kit'][data-state='active']")
        .await;
    b.fill("#c-password", &password_for(OPERATOR)).await;
    b.click_nav("#confirm-submit").await;
    b.find("#batch-steps li[data-step='install-kit'][data-state='done']")
        .await;
    let started = count(&net, "batch.step_started");
    assert_eq!(started, 3, "three steps started on the batch view");

    // The culture runs on its simulated device until the harvest decision is due; the
    // operator signs each decision in the batch view's dialog, with what the twin
    // predicts, until it harvests (the culture goes on a day between decisions).
    let mut decisions = 0;
    loop {
        let r = cellops_demo::flow::culture_until(&mut net, &batch, None, Some("harvest-decision"))
            .await
            .unwrap();
        assert_eq!(r["stopped"], "step_due", "{r}");
        b.goto(&format!("/ui/batch?batch={batch}")).await;
        b.find("#decision-form").await;
        if decisions == 0 {
            b.js(
                "document.querySelector('#decision-form').scrollIntoView();",
                vec![],
            )
            .await;
            b.screenshot("walk-decision").await;
        }
        b.fill("#d-password", &password_for(OPERATOR)).await;
        b.click_nav("#decision-submit").await;
        assert!(
            b.text("#flash-notice")
                .await
                .contains("decision is recorded"),
            "{}",
            b.text("main").await
        );
        decisions += 1;
        let due = b
            .find("#batch-due")
            .await
            .attr("data-step")
            .await
            .unwrap()
            .unwrap_or_default();
        if due != "expansion-daily" {
            break;
        }
        assert!(decisions < 10, "no harvest after {decisions} decisions");
    }
    assert_eq!(count(&net, "batch.decision_evaluated"), decisions);

    // The culture runs on to the harvest. The operator prints the product unit's label
    // and records it applied on the labels screen (reconciled); the batch is registered for
    // QC (API). The QC analyst enters every result on the QC screen, and QA signs the
    // release on the release screen.
    walk_to(&mut net, &mut bank, &mut p, "harvest").await;
    let product_unit = p.harvested_unit();
    sign_in(&b, OPERATOR).await;
    b.goto(&format!("/ui/labels?batch={batch}")).await;
    b.fill("#p-unit", &product_unit).await;
    b.fill("#p-description", "prime-car-t").await;
    // Printing answers with the label PDF (the browser shows or saves it).
    b.click("#print-form button[type=submit]").await;
    for _ in 0..50 {
        if count(&net, "label.printed") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count(&net, "label.printed"), 1);
    b.goto(&format!("/ui/labels?batch={batch}")).await;
    assert!(b.text("#labels-status").await.contains("NOT RECONCILED"));
    b.fill("#c-unit", &product_unit).await;
    b.fill("#c-count", "1").await;
    b.click_nav("#count-form button[type=submit]").await;
    b.find("#flash-notice").await;
    let status = b.text("#labels-status").await;
    assert!(
        status.contains("RECONCILED") && !status.contains("NOT"),
        "{status}"
    );
    b.screenshot("walk-labels").await;
    sign_in(&b, QC_ANALYST).await;
    b.goto(&format!("/ui/qc?batch={batch}")).await;
    // Not registered yet: the form is filled from the batch record (product, recipe
    // version, the harvested unit).
    assert_eq!(value(&b, "#qr-units").await, product_unit);
    // A specification version that does not exist: refused by the QC API, typed kept.
    b.fill("#qr-spec", "9").await;
    b.click_nav("#qc-register-submit").await;
    assert!(
        b.exists_now("#qc-register-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(value(&b, "#qr-spec").await, "9");
    assert_eq!(value(&b, "#qr-units").await, product_unit);
    b.fill("#qr-spec", "1").await;
    b.click_nav("#qc-register-submit").await;
    assert!(
        b.text("#flash-notice").await.contains("registered"),
        "{}",
        b.text("main").await
    );
    p.labelled_elsewhere(net.now()).unwrap();
    walk_to(&mut net, &mut bank, &mut p, "release").await;
    sign_in(&b, QC_ANALYST).await;
    b.goto(&format!("/ui/qc?batch={batch}")).await;
    b.find("#qc-result-form").await;
    let spec = cellops_qc::SpecCatalog::shipped()
        .unwrap()
        .get("prime-car-t", "1")
        .unwrap()
        .clone();
    for test in spec.tests() {
        let result = cellops_demo::flow::passing(test);
        b.find(&format!("#q-test option[value='{}']", test.id))
            .await
            .click()
            .await
            .unwrap();
        match result["value"].as_f64() {
            Some(v) => {
                b.fill("#q-value", &v.to_string()).await;
                b.fill("#q-unit", result["unit"].as_str().unwrap()).await;
                b.fill("#q-outcome", "").await;
            }
            None => {
                b.fill("#q-value", "").await;
                b.fill("#q-unit", "").await;
                b.fill("#q-outcome", result["outcome"].as_str().unwrap())
                    .await;
            }
        }
        b.fill("#q-instrument", "qc-lab-1").await;
        b.click_nav("#qc-submit").await;
        assert!(
            !b.exists_now(&format!("#qc-test-{} .chip.warn", test.id))
                .await
                && !b.exists_now(&format!("#qc-test-{}.refusal", test.id)).await
                && !b.exists_now("#flash-error").await,
            "{}: {}",
            test.id,
            b.text("main").await
        );
    }
    b.screenshot("walk-qc").await;
    sign_in(&b, QA).await;
    b.goto(&format!("/ui/release?batch={batch}")).await;
    b.find("#release-readiness[data-releasable='true']").await;
    b.fill("#r-password", &password_for(QA)).await;
    if b.exists_now("#r-acknowledge").await {
        b.click("#r-acknowledge").await;
    }
    b.click_nav("#release-submit").await;
    assert_eq!(
        count(&net, "qc.release.decided"),
        1,
        "{}",
        b.text("main").await
    );
    b.screenshot("walk-released").await;
    p.released_elsewhere(net.now()).unwrap();

    // Shipping: with the unit handed over and a dry shipper charged (API), the courier
    // packs the product on the shipments screen and hands it to the courier; at the
    // hospital the nurse receives it, scanning the unit again.
    net.advance_to(p.due).await;
    sign_in(&b, COURIER).await;
    take_over(&b, &p.product_unit, OPERATOR, "-180").await;
    assert!(b.text("#flash-notice").await.contains("Hand-off recorded"));
    let (shipment, shipper, logger) = p.shipper_taken(&mut net, &mut bank).await.unwrap();
    b.goto("/ui/shipments").await;
    // The dry shipper's LN2 charge (an unknown shipper refused first).
    b.fill("#ch-shipper", "ds-99").await;
    b.click_nav("#charge-submit").await;
    assert!(
        b.exists_now("#charge-error").await,
        "{}",
        b.text("main").await
    );
    b.fill("#ch-shipper", &shipper).await;
    b.click_nav("#charge-submit").await;
    assert!(
        b.text("#flash-notice").await.contains("charge is recorded"),
        "{}",
        b.text("main").await
    );
    assert_eq!(value(&b, "#pk-shipper").await, shipper);
    b.fill("#pk-shipment", &shipment).await;
    b.fill("#pk-to", kyoto.site).await;
    b.fill("#pk-units", &scan_text(&p.product_unit)).await;
    b.fill("#pk-shipper", &shipper).await;
    b.fill("#pk-logger", &logger).await;
    b.screenshot("walk-pack").await;
    // A bag the shipment cannot carry (no such unit): refused by the shipments API on the
    // form, everything typed kept, nothing packed.
    let packed = count(&net, "shipment.packed");
    b.fill("#pk-units", "=A999925999999X0=<S2000100").await;
    b.click_nav("#pack-submit").await;
    assert!(
        b.exists_now("#pack-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(value(&b, "#pk-shipper").await, shipper);
    assert_eq!(value(&b, "#pk-shipment").await, shipment);
    assert_eq!(count(&net, "shipment.packed"), packed);
    b.fill("#pk-units", &scan_text(&p.product_unit)).await;
    b.click_nav("#pack-submit").await;
    assert!(
        b.text("#flash-notice").await.contains("packed"),
        "{}",
        b.text("main").await
    );
    b.click_nav("#dispatch-submit").await;
    assert!(b.text("#flash-notice").await.contains("on its way"));
    assert!(!b.exists_now("#dispatch-form").await);
    let dispatched_at = net.now();
    p.dispatched_elsewhere(dispatched_at).unwrap();
    net.advance_to(p.due).await;
    sign_in(&b, nurse).await;
    b.goto(&format!("/ui/shipments?shipment={shipment}")).await;
    // In Japanese the receipt form speaks Japanese.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #receive-form").await;
    assert_no_english(&b, "/ui/shipments (receive)", &english_only_texts()).await;
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #receive-form").await;
    // Another bag scanned at unpacking: refused, the typed values kept, nothing received.
    let received = count(&net, "shipment.received");
    b.fill("#rcv-units", &scan_text(&collected)).await;
    b.fill("#rcv-temperature", "-170").await;
    b.click_nav("#receive-submit").await;
    assert!(
        b.exists_now("#receive-error").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(value(&b, "#rcv-temperature").await, "-170");
    assert_eq!(count(&net, "shipment.received"), received);
    b.fill("#rcv-units", &scan_text(&p.product_unit)).await;
    b.screenshot("walk-receive").await;
    b.click_nav("#receive-submit").await;
    assert!(
        b.text("#flash-notice").await.contains("received"),
        "{}",
        b.text("main").await
    );
    assert!(!b.exists_now("#receive-form").await);
    // The nurse pastes the logger file: its excursion is found and drawn.
    let csv = cellops_cold::demo::excursion_logger_csv(dispatched_at);
    b.js(
        "document.querySelector('#lg-csv').value = arguments[0];",
        vec![json!(csv)],
    )
    .await;
    b.click_nav("#logger-submit").await;
    assert!(
        b.text("#flash-notice")
            .await
            .contains("Excursions were found"),
        "{}",
        b.text("main").await
    );
    assert!(b.exists_now("#logger-plot rect.excursion").await);
    // QA investigates, assesses (a justification missing first: refused, nothing
    // recorded) and closes the excursion's deviation with the e-signature.
    sign_in(&b, QA).await;
    b.goto(&format!("/ui/shipments?shipment={shipment}")).await;
    b.find("#ex-form-1[data-step='investigate']").await;
    b.fill(
        "#ex-findings-1",
        "brief rise above -150 °C while the lid was opened at the transfer hub",
    )
    .await;
    b.click_nav("#ex-submit-1").await;
    b.find("#ex-form-1[data-step='assess']").await;
    let assessed = count(&net, "excursion.assessed");
    b.js(
        "document.querySelector('#ex-justification-1').removeAttribute('required');",
        vec![],
    )
    .await;
    b.click_nav("#ex-submit-1").await;
    assert!(
        b.exists_now("#ex-error-1").await,
        "{}",
        b.text("main").await
    );
    assert_eq!(count(&net, "excursion.assessed"), assessed);
    b.fill(
        "#ex-justification-1",
        "far below the reject limit; product quality unaffected per the stability data",
    )
    .await;
    b.click_nav("#ex-submit-1").await;
    b.find("#ex-form-1[data-step='close']").await;
    b.fill("#ex-password-1", &password_for(QA)).await;
    b.screenshot("walk-excursion-close").await;
    b.click_nav("#ex-submit-1").await;
    assert!(
        b.text("#flash-notice").await.contains("closed"),
        "{}",
        b.text("main").await
    );
    assert_eq!(count(&net, "excursion.deviation_closed"), 1);
    assert!(
        !b.exists_now("#shipment-excursions li.warn").await,
        "the signed assessment is in force"
    );
    assert!(!b.exists_now("#shipment-excursions form").await);
    p.checked_in_elsewhere(&mut bank, net.now(), 1).unwrap();

    // Then the nurse at the bedside.
    walk_to(&mut net, &mut bank, &mut p, "infuse").await;
    let unit_scan = scan_text(&p.product_unit);
    sign_in(&b, nurse).await;
    // Home: the product waiting at the hospital is what needs the nurse now.
    b.find(&format!("main li.warn a[href='/ui/orders?order={order}']"))
        .await;

    // The hospital's orders list the patient's order, at the hospital, thaw next.
    b.click_nav("nav a[href='/ui/orders']").await;
    let row = format!("#orders-list tr[data-order='{order}']");
    let listed = b.text(&row).await;
    assert!(
        listed.contains("At the hospital") && listed.contains(&p.subject),
        "{listed}"
    );
    b.click_nav(&format!("{row} a")).await;
    assert_eq!(
        b.find("#order-stage")
            .await
            .attr("data-stage")
            .await
            .unwrap()
            .as_deref(),
        Some("received_at_hospital")
    );
    assert!(b.text("#order-next").await.contains("Thaw"));
    // Milestones come from the modules' own records, each named with its source.
    let sources = b
        .js(
            "return Array.from(document.querySelectorAll('#order-timeline tbody tr'))
               .map(r => [r.dataset.what, r.dataset.source]);",
            vec![],
        )
        .await;
    let has = |what: &str, source: &str| {
        sources
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == &json!([what, source]))
    };
    for (what, source) in [
        ("order.placed", "order"),
        ("order.collected", "order"),
        ("manufacturing_started", "batch"),
        ("harvested", "batch"),
        ("released", "release"),
        ("shipped_to_hospital", "shipment"),
        ("received_at_hospital", "shipment"),
    ] {
        assert!(has(what, source), "{what} from {source}: {sources}");
    }
    let timeline = b.text("#order-timeline").await;
    assert!(
        timeline.contains("Released by QA") && timeline.contains("QC and release"),
        "{timeline}"
    );
    // What is next, with a predicted date for the infusion.
    assert!(
        b.exists_now("#order-predicted tr[data-step='infusion']")
            .await
    );
    b.screenshot("order-timeline").await;

    // The thaw, signed by the nurse.
    b.fill("#thaw-password", &password_for(nurse)).await;
    if b.exists_now("#thaw-acknowledge").await {
        b.click("#thaw-acknowledge").await;
    }
    b.click_nav("#thaw-submit").await;
    assert!(b.text("#flash-notice").await.contains("thaw"));
    b.find("#order-stage[data-stage='thawed']").await;

    // Bedside: the second nurse scans another patient's wristband. STOP, recorded.
    let mismatches = count(&net, "bedside.mismatch");
    b.fill("#bs-first-wristband", &p.subject).await;
    b.fill("#bs-first-unit", &unit_scan).await;
    b.fill("#bs-second-user", second).await;
    b.fill("#bs-second-password", &password_for(second)).await;
    b.fill("#bs-second-wristband", "S-OTHERPATNT").await;
    b.fill("#bs-second-unit", &unit_scan).await;
    b.click_nav("#bedside-submit").await;
    let outcome = b.find("#bedside-outcome").await;
    assert_eq!(
        outcome.attr("data-kind").await.unwrap().as_deref(),
        Some("stop"),
        "{}",
        outcome.text().await.unwrap()
    );
    let text = outcome.text().await.unwrap();
    assert!(
        text.contains("STOP") && text.contains("not this order's patient"),
        "{text}"
    );
    let colour = outcome.css_value("background-color").await.unwrap();
    assert!(colour.contains("253, 226, 225"), "STOP is red: {colour}");
    assert_eq!(count(&net, "bedside.mismatch"), mismatches + 1);
    assert!(
        !b.exists_now("#infusion-form").await,
        "no infusion after a STOP"
    );
    b.find("#order-timeline tr.refusal[data-what='bedside.mismatch']")
        .await;
    b.screenshot("bedside-stop").await;

    // Both checkers scan the right patient and bag: PASS, then the infusion.
    b.fill("#bs-first-wristband", &p.subject).await;
    b.fill("#bs-first-unit", &unit_scan).await;
    b.fill("#bs-second-user", second).await;
    b.fill("#bs-second-password", &password_for(second)).await;
    b.fill("#bs-second-wristband", &p.subject).await;
    b.fill("#bs-second-unit", &unit_scan).await;
    b.click_nav("#bedside-submit").await;
    b.find("#bedside-outcome[data-kind='pass']").await;
    assert!(b.text("#bedside-outcome").await.contains("PASS"));
    b.find("#order-stage[data-stage='verified']").await;
    b.screenshot("bedside-pass").await;
    b.fill("#inf-volume", "50").await;
    b.fill("#inf-route", "intravenous").await;
    b.click_nav("#infusion-submit").await;
    b.find("#order-stage[data-stage='infused']").await;
    assert!(b.text("#flash-notice").await.contains("infusion"));
    assert_eq!(count(&net, "infusion.recorded"), 1);
    let sources = b
        .js(
            "return Array.from(document.querySelectorAll('#order-timeline tbody tr'))
               .map(r => r.dataset.what);",
            vec![],
        )
        .await;
    for what in ["thawed", "bedside.verified", "infusion.recorded"] {
        assert!(
            sources.as_array().unwrap().contains(&json!(what)),
            "{what}: {sources}"
        );
    }
    b.screenshot("order-infused").await;
    let (overflow, sizes) = b.overflows_horizontally().await;
    assert!(!overflow, "the order page is wider than 1024 px: {sizes}");
    let unlabelled = b.unlabelled_inputs().await;
    assert_eq!(unlabelled, json!([]), "inputs without a label");

    // The same order in Japanese: Japanese texts only, dates in Japan time.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #order-timeline").await;
    let english = english_only_texts();
    assert_no_english(&b, "/ui/orders", &english).await;
    assert!(b.text("#order-stage").await.contains("投与済み"));
    let timeline = b.text("#order-timeline").await;
    assert!(
        timeline.contains("JST") && !timeline.contains("UTC"),
        "Japanese shows Japan time: {timeline}"
    );
    b.screenshot("order-timeline-ja").await;
    b.goto("/ui/orders").await;
    b.find("#orders-list").await;
    assert_no_english(&b, "/ui/orders (list)", &english).await;

    // The CPC's operator: the batch view of this order's batch, in Japanese first.
    let batch = net
        .get("order", OPERATOR, &format!("/api/orders/{order}"))
        .await
        .unwrap()["batch"]
        .as_str()
        .unwrap()
        .to_string();
    sign_in(&b, OPERATOR).await;
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] main").await;
    b.goto(&format!("/ui/orders?order={order}")).await;
    assert_eq!(b.text("#order-batch").await, batch);
    b.click_nav("#order-batch").await;
    b.find("html[lang='ja'] #batch-growth").await;
    assert_no_english(&b, "/ui/batch", &english).await;
    b.screenshot("batch-ja").await;
    b.find("#lang-select option[value='en']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='en'] #batch-growth").await;
    assert_eq!(
        b.find("#batch-status")
            .await
            .attr("data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("Completed")
    );
    // The growth curve: telemetry, in-process counts, the twin's band and the dose line.
    for part in [
        "polyline.telemetry",
        "circle.count",
        "polygon.forecast-band",
        "line.dose-line",
    ] {
        assert!(
            b.exists_now(&format!("#growth-plot {part}")).await,
            "{part} is missing from the growth plot"
        );
    }
    assert!(b.exists_now("#metabolite-plot polyline.glucose_mm").await);
    let states = b
        .js(
            "return Array.from(document.querySelectorAll('#batch-steps li.step')).map(l => l.dataset.state);",
            vec![],
        )
        .await;
    assert!(
        states.as_array().unwrap().iter().all(|s| s == "done"),
        "a completed batch has every step done: {states}"
    );
    b.screenshot("batch").await;
    b.js(
        "document.querySelector('#batch-growth').scrollIntoView();",
        vec![],
    )
    .await;
    b.screenshot("batch-growth").await;
    let (overflow, sizes) = b.overflows_horizontally().await;
    assert!(!overflow, "the batch page is wider than 1024 px: {sizes}");

    // The storage map: the CPC's dewar, racks of boxes, a box's positions, with a unit put
    // away at R2/B3/P5 on the storage screen's form.
    let din = net
        .post(
            "a DIN",
            OPERATOR,
            "/api/dins",
            json!({"site": CPC, "count": 1}),
        )
        .await
        .unwrap()["dins"][0]
        .as_str()
        .unwrap()
        .to_string();
    let stored = format!("{din}-{PRODUCT_CODE}");
    net.post(
        "register a unit",
        OPERATOR,
        "/api/units",
        json!({"code": stored, "expires_at": net.in_hours(24 * 300), "site": CPC,
               "location": "cpc-kyoto/isolator-1"}),
    )
    .await
    .unwrap();
    // Put away on the storage screen: unit label and position label scanned.
    b.click_nav("nav a[href='/ui/storage']").await;
    b.fill("#pa-unit", &scan_text(&stored)).await;
    b.fill("#pa-position", &format!("{DEWAR}/R2/B3/P5")).await;
    b.click_nav("#putaway-submit").await;
    let notice = b.text("#flash-notice").await;
    assert!(notice.contains(&stored), "{notice}");
    b.click_nav("nav a[href='/ui/storage']").await;
    b.find("section.storage").await;
    let occupied = b.text("section.storage .storage-occupancy").await;
    assert!(occupied.contains("Occupied"), "{occupied}");
    let boxes = b
        .js(
            "return document.querySelectorAll('section.storage a.box').length;",
            vec![],
        )
        .await;
    assert!(boxes.as_u64().unwrap() > 0, "no boxes drawn");
    let full = "section.storage a.box[data-rack='2'][data-box='3'][data-count='1']";
    b.click_nav(full).await;
    let slot = b.text("#storage-box li.slot[data-slot='5']").await;
    assert!(slot.contains(&stored), "{slot}");
    assert!(
        b.text("#storage-box li.slot[data-slot='4']")
            .await
            .contains("free")
    );
    b.screenshot("storage").await;

    // Shipments: the patient's, with the logger plot, its limits and the excursion marked.
    b.click_nav("nav a[href='/ui/shipments']").await;
    b.find("#shipments-list tr.refusal a").await;
    b.click_nav("#shipments-list tr.refusal a").await;
    for part in [
        "polyline.temperature",
        "line.alarm-limit",
        "line.reject-limit",
        "rect.excursion",
        "text.excursion-marker",
    ] {
        assert!(
            b.exists_now(&format!("#logger-plot {part}")).await,
            "{part} is missing from the logger plot"
        );
    }
    let excursions = b.text("#shipment-excursions").await;
    assert!(
        excursions.contains("Temperature excursion") && excursions.contains("QA: accepted"),
        "{excursions}"
    );
    assert!(
        b.text("#shipment-facts").await.contains(&p.product_unit),
        "the shipment carries the patient's unit"
    );
    b.js(
        "document.querySelector('#shipment-logger').scrollIntoView();",
        vec![],
    )
    .await;
    b.screenshot("shipment-logger").await;
    let (overflow, sizes) = b.overflows_horizontally().await;
    assert!(
        !overflow,
        "the shipment page is wider than 1024 px: {sizes}"
    );

    // Both in Japanese, with no English fallback.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #logger-plot").await;
    assert_no_english(&b, "/ui/shipments", &english).await;
    b.screenshot("shipment-ja").await;
    b.goto("/ui/storage").await;
    b.find("html[lang='ja'] section.storage").await;
    assert_no_english(&b, "/ui/storage", &english).await;
    net.verify_ledger().await.unwrap();
}
