//! The demo network vein to vein through the HTTP API in a simulated clock, on SQLite and on
//! the real PostgreSQL server: every product's patients infused, each demo scenario seen,
//! then the ledger verifies and each order's timeline shows the modules' own records.

use cellops_demo::network::{HOSPITALS, Network, demo_epoch};
use cellops_demo::{Summary, demo_plan, run};
use cellops_ledger::Backend;
use cellops_ledger::postgres::Postgres;
use cellops_ledger::sqlite::Sqlite;

async fn demo_network<B: Backend>(url: &str) -> (Network<B>, Summary) {
    let mut net = Network::<B>::open(url, demo_epoch(), 7).await.unwrap();
    let plan = demo_plan(net.now());
    let summary = match run(&mut net, plan).await {
        Ok(s) => s,
        Err(e) => panic!("{e:#}"),
    };
    (net, summary)
}

async fn check<B: Backend>(net: &mut Network<B>, summary: &Summary) {
    for product in ["prime-car-t", "bm-msc", "allo-car-t"] {
        let s = &summary.products[product];
        assert_eq!(s.patients, 2, "{product}: {summary:#?}");
        assert_eq!(s.infused, 2, "{product}: {summary:#?}");
    }
    assert_eq!(summary.products["bm-msc"].failed_batches, 1);
    assert_eq!(summary.products["bm-msc"].batches, 3);
    assert_eq!(summary.products["bm-msc"].refusals, 1);
    assert_eq!(summary.products["prime-car-t"].excursions, 1);
    // Every order reached infusion through the modules' own records, none by hand.
    let mut seen = 0;
    for h in HOSPITALS {
        let orders = net
            .get(
                "orders",
                h.physician,
                &format!("/api/orders?site={}", h.site),
            )
            .await
            .unwrap();
        let orders = orders["orders"].as_array().unwrap().clone();
        assert_eq!(orders.len(), 3, "{}: {orders:#?}", h.site);
        seen += orders.len();
        for o in &orders {
            let id = o["order"].as_str().unwrap();
            let view = net
                .get("order", h.physician, &format!("/api/orders/{id}"))
                .await
                .unwrap();
            assert_eq!(view["stage"], "infused", "{view:#}");
            let happened: Vec<&str> = view["happened"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["what"].as_str().unwrap())
                .collect();
            let allogeneic = view["product"] == "allo-car-t";
            assert!(
                happened.contains(&"released")
                    || happened.contains(&"released_at_risk")
                    || allogeneic,
                "{id}: release in {happened:?}"
            );
            // The twin predicted the dose day of each PRIME CAR-T batch.
            assert!(
                view["product"] != "prime-car-t" || happened.contains(&"dose_predicted"),
                "{id}: dose prediction in {happened:?}"
            );
            // An autologous order's collection slot was booked in the schedule.
            assert!(
                allogeneic || happened.contains(&"schedule.booked"),
                "{id}: booking in {happened:?}"
            );
            for step in [
                if allogeneic {
                    "dose_allocated"
                } else {
                    "manufacturing_started"
                },
                if allogeneic {
                    "dose_allocated"
                } else {
                    "harvested"
                },
                "shipped_to_hospital",
                "received_at_hospital",
                "bedside.verified",
                "infusion.recorded",
                "response",
            ] {
                assert!(happened.contains(&step), "{id}: {step} in {happened:?}");
            }
            assert!(
                view["happened"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["manual"] != true),
                "{view:#}"
            );
        }
    }
    assert_eq!(seen, 6);
    // Every record the run wrote (and the logins since) verifies.
    let checked = net.verify_ledger().await.unwrap();
    assert!(
        checked >= summary.records,
        "{checked} < {}",
        summary.records
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_network_runs_every_product_vein_to_vein_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let (mut net, summary) = demo_network::<Sqlite>(&url).await;
    check(&mut net, &summary).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_network_runs_every_product_vein_to_vein_on_postgres() {
    let admin = std::env::var("CELLOPS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("cellops_demo_{}", std::process::id());
    let make = {
        let (admin, name) = (admin.clone(), name.clone());
        move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls)
                .expect("PostgreSQL at 127.0.0.1:5432 (scripts/setup-test-deps starts it)");
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .unwrap();
            c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        }
    };
    tokio::task::spawn_blocking(make).await.unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let (mut net, summary) = demo_network::<Postgres>(&url).await;
    check(&mut net, &summary).await;
    drop(net);
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    })
    .await
    .unwrap();
}
