//! Derivations on the scan page in a real browser: an operator seeds a collected unit into
//! culture (formulate) with its reagent lots; the genealogy and the lots are recorded as the
//! custody API records them; a used-up parent is refused with what was typed kept; the
//! Japanese form has no English.

use crate::browser::Browser;
use crate::screens::{english_only_texts, trained_in_custody, units};
use crate::{Served, serve};
use serde_json::json;

async fn fill_derive(b: &Browser, parent: &str, child: &str) {
    b.goto("/ui/scan").await;
    b.js(
        "document.querySelector('#dv-operation').value = 'formulate';
         document.querySelector('#dv-parents').value = arguments[0];
         document.querySelector('#dv-children').value = arguments[1];
         document.querySelector('#dv-expires').value = '2025-12-20T10:00';
         document.querySelector('#dv-lots').value = 'LV-2026-001\\nMED-2026-118';
         document.querySelector('#dv-location').value = 'cpc-culture';",
        vec![json!(parent), json!(child)],
    )
    .await;
    b.click_nav("#derive-submit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_seeds_a_unit_into_culture_on_the_scan_page() {
    let Served { app, base } = serve().await;
    trained_in_custody(&app, "op");
    let made = units(&app, 1).await;
    let (parent, din) = (&made[0].0, &made[0].1);
    let child = format!("{din}-S2000100");
    let b = Browser::start(&base).await;
    b.login("op").await;
    fill_derive(&b, parent, &child).await;
    let done = b.text("#derive-made").await;
    assert!(done.contains(&child), "{done}");
    // The custody record: the child made from the parent with both reagent lots.
    let op = app.login("op").await;
    let trace = app.get(&format!("/api/units/{child}/trace"), &op).await;
    let text = trace.body.to_string();
    assert!(text.contains(parent.as_str()), "{text}");
    assert!(
        text.contains("LV-2026-001") && text.contains("MED-2026-118"),
        "{text}"
    );
    // The parent is used up: the same derivation again is refused, the form kept.
    fill_derive(&b, parent, &format!("{din}-S2000200")).await;
    let error = b.text("#derive-error").await;
    assert!(!error.is_empty());
    let kept = b
        .js(
            "return document.querySelector('#dv-parents').value;",
            vec![],
        )
        .await;
    assert_eq!(kept, json!(parent));
    assert!(!b.exists_now("#derive-made").await);
    // No child unit named: refused before any request, naming the field.
    fill_derive(&b, parent, "  ").await;
    assert!(b.text("#derive-error").await.contains("children"));
    // Japanese: the form without English.
    b.find("#lang-select option[value='ja']")
        .await
        .click()
        .await
        .unwrap();
    b.find("html[lang='ja'] #derive-form").await;
    let form = b.text("#derive-form").await;
    for text in english_only_texts() {
        assert!(
            !form.contains(text.as_str()),
            "English {text:?} on the Japanese derivation form"
        );
    }
    b.screenshot("scan-derive-ja").await;
}
