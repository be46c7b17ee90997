//! The firm's day in the staff's and clients' inboxes, with real parts (a real SMTP sink on
//! loopback, time driven through the passes' `now`): each opted-in member gets exactly one
//! daily digest per local day at the firm's sending hour, none when there is nothing to say;
//! "remind now" sends the client one reminder through the outbox, and is refused past the
//! reminder policy or for a request that is not open; the scheduled pass counts those against
//! the policy's maximum too.

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
        // The requests' own emails leave first (tomorrow at noon: inside the sending window
        // whatever the hour this test runs at, after any email deferred to tomorrow morning).
        let later = crate::support::paris_noon(1);
        worker.run_once(later).await.expect("worker runs");
        let before = sink.messages().len();
        assert!(before > 0, "signing announced the requests");
        let request = open_requests(&pool, firm.firm.id).await.remove(0);
        let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
        let remind = "mutation($id: ID!) { remindRequest(id: $id) { id status } }";
        let data = app.ok(&admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request.id) })).await;
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
            app.ok(&admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request.id) })).await;
        }
        let refused = app.exec(&admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request.id) })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert!(refused["errors"][0]["message"].as_str().expect("message").contains("3"));
        worker.run_once(later).await.expect("worker runs");
        assert_eq!(sink.wait_for(before + 3, WAIT).await.len(), before + 3);

        // A closed request is not reminded.
        let other = open_requests(&pool, firm.firm.id).await.remove(1);
        rappel::ops::work::close_request(firm.env(), &firm.admin(), other.id)
            .await
            .expect("closed");
        let refused = app.exec(&admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, other.id) })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert!(refused["errors"][0]["message"].as_str().expect("message").contains("CLOSED"));
        // Another firm's request is NOT_FOUND.
        let stranger = FirmFixture::create(&pool, "stranger").await;
        let (_, other_admin) = app.login(&stranger.admin_email, PASSWORD).await;
        let refused = app.exec(&other_admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request.id) })).await;
        assert_eq!(error_codes(&refused), ["NOT_FOUND"], "{refused}");
        worker.run_once(later).await.expect("worker runs");
        assert_eq!(sink.messages().len(), before + 3, "nothing more was sent");
    }
}

backend_test! {
    async fn each_opted_in_member_gets_one_digest_a_day_at_the_sending_hour_and_none_when_empty(db: TestDb) {
        use chrono::{Duration as Days, NaiveTime, TimeZone};
        use rappel::delivery::digest::{DigestSettings, run_pass};
        use rappel::delivery::email::Mailer;

        let sink = SmtpSink::start().await;
        let config = config_for(&sink);
        let app = TestApp::new(db);
        let pool = app.db.pool.clone();
        let firm = FirmFixture::create(&pool, "digest").await;
        let service = firm.service("TVA", 10).await;
        let (client, _) = firm.client_with_contact("Boulangerie").await;
        let mission = firm.monthly_mission(&client, &service).await;
        rappel::ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id)
            .await
            .expect("signed");
        let tasks = {
            let mut conn = pool.get().await.expect("connection");
            work::list_tasks(&mut conn.as_db(), firm.firm.id, None, &WorkFilter::default(), &work::DuePage::first(1000))
                .await
                .expect("tasks")
        };
        assert!(tasks.len() >= 2, "{tasks:?}");
        let quiet = firm.member("quiet").await;
        let rappel::ops::Actor::Staff { user_id: quiet_id, .. } = quiet else { panic!("staff") };
        let _idle = firm.member("idle").await;
        // Every task but one to the admin; one to a member who turns the digest off.
        for task in &tasks[1..] {
            rappel::ops::work::assign_task(firm.env(), &firm.admin(), task.id, Some(firm.admin_id)).await.expect("assigned");
        }
        rappel::ops::work::assign_task(firm.env(), &firm.admin(), tasks[0].id, Some(quiet_id)).await.expect("assigned");
        let off = rappel::ops::staff::update_my_preferences(firm.env(), &quiet, Some(false)).await.expect("off");
        assert!(!off.daily_digest);
        // The mutation, for the admin: off then on again.
        let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
        let set = "mutation($on: Boolean) { updateMyPreferences(input: { dailyDigest: $on }) { dailyDigest } }";
        assert_eq!(app.ok(&admin, set, json!({ "on": false })).await["updateMyPreferences"]["dailyDigest"], false);
        assert_eq!(app.ok(&admin, set, json!({ "on": null })).await["updateMyPreferences"]["dailyDigest"], false);
        assert_eq!(app.ok(&admin, set, json!({ "on": true })).await["updateMyPreferences"]["dailyDigest"], true);

        let mailer = Mailer::from_config(&config.smtp).expect("mailer");
        let settings = DigestSettings::from_config(&config);
        let paris = chrono_tz::Europe::Paris;
        let local = |day: chrono::NaiveDate, hour: u32, minute: u32| {
            paris
                .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(hour, minute, 0).expect("time")))
                .single()
                .expect("one instant")
                .with_timezone(&Utc)
        };
        let today = firm.today();

        // Before the firm's sending hour (8:00 in Paris): nothing.
        let early = run_pass(&pool, &mailer, &settings, local(today, 6, 0)).await.expect("pass");
        assert_eq!(early.sent, 0);
        // After it, two instances at once: exactly one digest, to the admin only.
        let at = local(today, 9, 30);
        let (first, second) = tokio::join!(
            run_pass(&pool, &mailer, &settings, at),
            run_pass(&pool, &mailer, &settings, at)
        );
        assert_eq!(first.expect("pass").sent + second.expect("pass").sent, 1);
        let mails = sink.wait_for(1, WAIT).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].rcpt_to, std::slice::from_ref(&firm.admin_email));
        let digest = parse(&mails[0].data);
        let text = digest.text_body.clone().unwrap_or_default();
        let overdue: Vec<_> = tasks[1..].iter().filter(|task| task.due_date < today).collect();
        assert!(!overdue.is_empty());
        assert!(text.contains("En retard"), "{text}");
        assert!(text.contains("TVA: préparer (Boulangerie)"), "{text}");
        assert!(digest.subject.as_deref().unwrap_or_default().contains("Cabinet digest"), "{digest:?}");
        let html = digest.html_body.clone().unwrap_or_default();
        assert!(html.contains("<li>TVA: préparer (Boulangerie)"), "{html}");

        // Later the same day: nothing more; the next day: one more.
        let again = run_pass(&pool, &mailer, &settings, local(today, 18, 0)).await.expect("pass");
        assert_eq!(again.sent, 0);
        assert!(again.empty >= 1, "the idle member has nothing to read: {again:?}");
        let tomorrow = run_pass(&pool, &mailer, &settings, local(today + Days::days(1), 9, 0)).await.expect("pass");
        assert_eq!(tomorrow.sent, 1);
        let mails = sink.wait_for(2, WAIT).await;
        assert_eq!(mails.len(), 2);
        assert!(mails.iter().all(|mail| mail.rcpt_to == std::slice::from_ref(&firm.admin_email)));
    }
}

backend_test! {
    async fn the_scheduled_pass_counts_reminders_sent_at_once_against_the_policy_maximum(db: TestDb) {
        use rappel::db::claims;
        use rappel::delivery::reminders::{ReminderSettings, reminder_dates, run_pass};
        use rappel::ops::remind::reminders_counted;

        let sink = SmtpSink::start().await;
        let config = config_for(&sink);
        let app = TestApp::new(db);
        let pool = app.db.pool.clone();
        let firm = FirmFixture::create(&pool, "cap").await;
        let service = firm.service("TVA", 10).await;
        let (client, _contact) = firm.client_with_contact("Boulangerie").await;
        let mission = firm.monthly_mission(&client, &service).await;
        rappel::ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id)
            .await
            .expect("signed");
        let settings = ReminderSettings::from_config(&config);
        let policy = settings.defaults;
        assert_eq!(policy.max_count, 3, "the default policy allows three reminders");
        // A request with at least two scheduled reminder dates ahead.
        let (request, dates) = open_requests(&pool, firm.firm.id)
            .await
            .into_iter()
            .map(|request| {
                // As the pass reckons it: from the day the request went out, in the firm's zone.
                let zone = rappel::domain::calendar::parse_time_zone(&firm.firm.time_zone)
                    .expect("zone");
                let created = request.created_at.and_utc().with_timezone(&zone).date_naive();
                let dates = reminder_dates(request.due_date, &policy, request.created_on.max(created));
                (request, dates)
            })
            .find(|(_, dates)| dates.len() >= 2)
            .expect("a request with two reminder dates");
        let given = |pool: Pool, id: i64| async move {
            let mut conn = pool.get().await.expect("connection");
            reminders_counted(
                &claims::reminder_keys_of_request(&mut conn.as_db(), firm.firm.id, id)
                    .await
                    .expect("keys"),
            )
        };
        // Two reminders sent at once.
        let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
        let remind = "mutation($id: ID!) { remindRequest(id: $id) { id } }";
        for _ in 0..2 {
            app.ok(&admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request.id) })).await;
        }
        assert_eq!(given(pool.clone(), request.id).await, 2);
        // The first scheduled date: one more reminder, the third and last.
        let report = run_pass(&pool, &settings, Utc::now(), Some(dates[0]))
            .await
            .expect("pass");
        assert!(report.reminders >= 1, "{report:?}");
        assert_eq!(given(pool.clone(), request.id).await, 3);
        // The next scheduled date: the request had its three, nothing more is enqueued,
        // however often the pass runs.
        for _ in 0..2 {
            run_pass(&pool, &settings, Utc::now(), Some(dates[1]))
                .await
                .expect("pass");
        }
        assert_eq!(given(pool.clone(), request.id).await, 3, "scheduled + manual stay within max_count");
        // And remindRequest is refused now.
        let refused = app.exec(&admin, remind, json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request.id) })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert_eq!(given(pool.clone(), request.id).await, 3);
    }
}
