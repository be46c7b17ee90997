//! The firm's day in the staff's and clients' inboxes, with real parts: "remind now" sends
//! the client one reminder through the outbox to a real SMTP sink on loopback, and is refused
//! past the reminder policy or for a request that is not open.

use std::time::Duration;

use chrono::Utc;
use rappel::config::Config;
use rappel::db::work::WorkFilter;
use rappel::db::{Pool, work};
use rappel::delivery::{DeliveryWaker, Worker};
use rappel::domain::RequestStatus;
use serde_json::json;

use crate::backend_test;
use crate::support::app::{PASSWORD, TestApp, error_codes};
use crate::support::fixture::FirmFixture;
use crate::support::smtp::{SmtpSink, parse};

/// Generous bound for waiting on something that happens in milliseconds; never asserted on.
const WAIT: Duration = Duration::from_secs(30);

/// A configuration whose emails go to `sink`.
fn config_for(sink: &SmtpSink) -> Config {
    let mut config = Config {
        public_base_url: "http://127.0.0.1:9".into(),
        ..Config::default()
    };
    config.smtp.transport = "smtp".into();
    config.smtp.host = "127.0.0.1".into();
    config.smtp.port = sink.port;
    config.smtp.pool_size = 1;
    config.smtp.from_address = "rappel@rappel.example".into();
    config
}

/// The open requests of a firm, oldest first.
async fn open_requests(pool: &Pool, firm_id: i64) -> Vec<work::InformationRequest> {
    let mut conn = pool.get().await.expect("connection");
    work::list_requests(
        &mut conn.as_db(),
        firm_id,
        Some(RequestStatus::Open),
        &WorkFilter::default(),
        &work::DuePage::first(1000),
    )
    .await
    .expect("requests")
}

backend_test! {
    async fn remind_request_emails_the_client_at_once_and_refuses_past_the_policy(db: TestDb) {
        let sink = SmtpSink::start().await;
        let config = config_for(&sink);
        let app = TestApp::new(db);
        let pool = app.db.pool.clone();
        let firm = FirmFixture::create(&pool, "remind").await;
        let service = firm.service("TVA", 10).await;
        let (client, _contact) = firm.client_with_contact("Boulangerie").await;
        let mission = firm.monthly_mission(&client, &service).await;
        rappel::ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id)
            .await
            .expect("signed");
        let worker = Worker::from_config(pool.clone(), &config, DeliveryWaker::default())
            .expect("worker");
        // The requests' own emails leave first (a day ahead: whatever the sending hour).
        let later = Utc::now() + chrono::Duration::days(1);
        worker.run_once(later).await.expect("worker runs");
        let before = sink.messages().len();
        assert!(before > 0, "signing announced the requests");
        let request = open_requests(&pool, firm.firm.id).await.remove(0);
        let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
        let remind = "mutation($id: ID!) { remindRequest(id: $id) { id status } }";
        let data = app.ok(&admin, remind, json!({ "id": request.id.to_string() })).await;
        assert_eq!(data["remindRequest"]["status"], "OPEN");
        let report = worker.run_once(later).await.expect("worker runs");
        assert_eq!(report.delivered, 1, "{report:?}");
        let mails = sink.wait_for(before + 1, WAIT).await;
        assert_eq!(mails.len(), before + 1);
        let reminder = parse(&mails.last().expect("a mail").data);
        assert!(reminder.text_body.as_deref().unwrap_or_default().contains(&request.text), "{reminder:?}");
        assert!(!reminder.text_body.as_deref().unwrap_or_default().contains("TVA: préparer"), "no task reaches a client");

        // The default policy allows three reminders in all; the fourth is refused.
        for _ in 0..2 {
            app.ok(&admin, remind, json!({ "id": request.id.to_string() })).await;
        }
        let refused = app.exec(&admin, remind, json!({ "id": request.id.to_string() })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert!(refused["errors"][0]["message"].as_str().expect("message").contains("3"));
        worker.run_once(later).await.expect("worker runs");
        assert_eq!(sink.wait_for(before + 3, WAIT).await.len(), before + 3);

        // A closed request is not reminded.
        let other = open_requests(&pool, firm.firm.id).await.remove(1);
        rappel::ops::work::close_request(firm.env(), &firm.admin(), other.id)
            .await
            .expect("closed");
        let refused = app.exec(&admin, remind, json!({ "id": other.id.to_string() })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert!(refused["errors"][0]["message"].as_str().expect("message").contains("CLOSED"));
        // Another firm's request is NOT_FOUND.
        let stranger = FirmFixture::create(&pool, "stranger").await;
        let (_, other_admin) = app.login(&stranger.admin_email, PASSWORD).await;
        let refused = app.exec(&other_admin, remind, json!({ "id": request.id.to_string() })).await;
        assert_eq!(error_codes(&refused), ["NOT_FOUND"], "{refused}");
        worker.run_once(later).await.expect("worker runs");
        assert_eq!(sink.messages().len(), before + 3, "nothing more was sent");
    }
}
