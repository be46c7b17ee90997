//! Bulk work throughput: 500 clients imported from CSV in one call, then one mission template
//! applied to all 500 in one `createMissions` call (one transaction), on SQLite and (when
//! configured) PostgreSQL. Prints the seconds of each call. Run: `cargo bench --bench bulk`
//! (clients: RAPPEL_BENCH_CLIENTS=500; PostgreSQL: RAPPEL_BENCH_POSTGRES_URL or
//! RAPPEL_TEST_POSTGRES_URL).

use std::time::Instant;

use chrono::NaiveDate;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rappel::db::Pool;
use rappel::db::clients::list_clients;
use rappel::db::page::Keyset;
use rappel::domain::schedule::Frequency;
use rappel::domain::{DeliverableType, ItemKind};
use rappel::generation::GenerationSettings;
use rappel::ops::bulk::{MissionTemplate, create_missions};
use rappel::ops::catalog::{ServiceInput, ServiceItemInput, create_service};
use rappel::ops::import::import_clients;
use rappel::ops::missions::MissionLineInput;
use rappel::ops::{Actor, Env};

async fn bench(backend: &str, url: &str, clients: usize) -> anyhow::Result<()> {
    let pool = Pool::connect(url, 4, 30_000).await?;
    pool.run_migrations().await?;
    let firm = rappel::setup::create_firm(
        &pool,
        "Bench",
        "bench@example.fr",
        Some("bench password 123"),
        "Europe/Paris",
        "fr",
    )
    .await?;
    let settings = GenerationSettings::default();
    let env = Env::new(&pool, &settings);
    let actor = Actor::System {
        firm_id: firm.firm.id,
    };
    let fail = |error: rappel::ops::OpError| anyhow::anyhow!(error.message());
    let service = create_service(
        env,
        &actor,
        &ServiceInput {
            category_id: None,
            title: "Paie".into(),
            deliverable_type: DeliverableType::Documents,
            lead_days: 5,
            items: vec![ServiceItemInput {
                id: None,
                kind: ItemKind::InformationRequest,
                title: "Vos variables de paie".into(),
            }],
            reminder_policy: None,
        },
    )
    .await
    .map_err(fail)?;
    let mut csv = String::from("client,contact_name,contact_email\n");
    for n in 0..clients {
        csv.push_str(&format!("Client {n},Contact {n},contact{n}@example.fr\n"));
    }
    let started = Instant::now();
    let report = import_clients(env, &actor, &csv, false)
        .await
        .map_err(fail)?;
    let import_seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.clients_created, clients);
    let ids: Vec<i64> = {
        let mut conn = pool.get().await?;
        list_clients(
            &mut conn.as_db(),
            firm.firm.id,
            false,
            None,
            &Keyset::first(i64::try_from(clients)?),
        )
        .await?
        .into_iter()
        .map(|client| client.id)
        .collect()
    };
    let template = MissionTemplate {
        name: "Paie 2031".into(),
        start_date: NaiveDate::from_ymd_opt(2031, 1, 1).expect("date"),
        end_date: NaiveDate::from_ymd_opt(2031, 12, 31),
        lines: vec![MissionLineInput {
            service_id: service.id,
            frequency: Frequency::Monthly,
            first_due_date: None,
            quantity: None,
            rrule: None,
            working_day_adjustment: None,
        }],
    };
    let started = Instant::now();
    let outcome = create_missions(env, &actor, &template, &ids, false)
        .await
        .map_err(fail)?;
    let missions_seconds = started.elapsed().as_secs_f64();
    assert!(outcome.applied && outcome.ids.len() == clients);
    println!(
        "{backend:8} {clients} clients: CSV import (client + contact each) {import_seconds:.2} s | createMissions on all {missions_seconds:.2} s ({:.0} missions/s)",
        clients as f64 / missions_seconds
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` would run this too; only a real bench run measures.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("bulk bench: run with `cargo bench --bench bulk`");
        return Ok(());
    }
    let clients: usize = std::env::var("RAPPEL_BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(500);
    let postgres = std::env::var("RAPPEL_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("RAPPEL_TEST_POSTGRES_URL"))
        .ok();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let folder = tempfile::tempdir()?;
        let path = folder.path().join("bench.db").to_string_lossy().to_string();
        bench("sqlite", &path, clients).await?;
        if let Some(admin_url) = &postgres {
            let name = format!("rappel_bench_{}", uuid::Uuid::new_v4().simple());
            let mut admin = AsyncPgConnection::establish(admin_url).await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await?;
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(base, _)| base);
            let result = bench("postgres", &format!("{base}/{name}"), clients).await;
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            result?;
        }
        Ok(())
    })
}
