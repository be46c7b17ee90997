//! The operations (`rappel::ops`) called directly, without GraphQL or HTTP, on both backends:
//! each module's permission and rules, and that a refusal changes nothing. The GraphQL tests
//! prove the wiring and the role matrix on top.

use chrono::{Duration, Utc};
use rappel::auth::{new_token, token_hash};
use rappel::db::tokens::{self, NewAccessToken};
use rappel::db::work::{DuePage, WorkFilter, list_requests, list_tasks};
use rappel::db::{catalog, clients, outbox};
use rappel::delivery::DeliveryControl;
use rappel::domain::{DeliveryEvent, MissionStatus, RequestStatus, Role, TaskStatus, TokenKind};
use rappel::generation::GenerationSettings;
use rappel::ops::answers::AnswerInput;
use rappel::ops::catalog::{ServiceInput, ServiceItemInput};
use rappel::ops::missions::MissionUpdateInput;
use rappel::ops::staff::FirmInput;
use rappel::ops::{self, Actor, Env, OpError};

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::PASSWORD;
use crate::support::fixture::FirmFixture;

/// The code and field of a refusal (panics on success).
fn refusal<T>(result: Result<T, OpError>) -> (&'static str, Option<String>, String) {
    match result {
        Ok(_) => panic!("expected a refusal"),
        Err(error) => {
            let field = match &error {
                OpError::BadUserInput { field, .. } => field.clone(),
                _ => None,
            };
            (error.code(), field, error.message())
        }
    }
}

fn all() -> WorkFilter {
    WorkFilter::default()
}

/// One page holding every row the tests make.
fn everything() -> DuePage {
    DuePage::first(10_000)
}

/// A contact of the fixture's client as an actor.
fn contact_actor(firm: &FirmFixture, contact: &rappel::db::clients::Contact) -> Actor {
    Actor::Contact {
        contact_id: contact.id,
        client_id: contact.client_id,
        firm_id: firm.firm.id,
    }
}

/// A signed mission with its catch-up generated: (firm, contact, mission).
async fn signed(db: &TestDb) -> (FirmFixture, rappel::db::clients::Contact, i64) {
    let firm = FirmFixture::create(&db.pool, "a").await;
    let service = firm.service("TVA", 10).await;
    let (client, contact) = firm.client_with_contact("Boulangerie").await;
    let mission = firm.monthly_mission(&client, &service).await;
    ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id)
        .await
        .expect("signed");
    (firm, contact, mission.id)
}

backend_test! {
    async fn create_firm_refuses_a_bad_time_zone_or_a_short_password_and_writes_nothing(db: TestDb) {
        let settings = GenerationSettings::default();
        let env = Env::new(&db.pool, &settings);
        let input = |time_zone, password| FirmInput {
            name: "Cabinet",
            admin_email: "admin@x.example.fr",
            admin_password: Some(password),
            time_zone,
            locale: "fr",
        };
        let (code, field, _) = refusal(ops::staff::create_firm(env, &input("Mars/Olympus", PASSWORD)).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("time-zone")));
        let (code, field, _) = refusal(ops::staff::create_firm(env, &input("Europe/Paris", "short")).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("admin-password")));
        let mut conn = db.pool.get().await.expect("conn");
        assert_eq!(rappel::db::firms::count_firms(&mut conn.as_db()).await.expect("count"), 0);
        drop(conn);
        ops::staff::create_firm(env, &input("Europe/Paris", PASSWORD)).await.expect("created");
        let (code, _, message) = refusal(ops::staff::create_firm(env, &input("Europe/Paris", PASSWORD)).await);
        assert_eq!(code, "CONFLICT", "{message}");
    }
}

backend_test! {
    async fn catalog_operations_check_their_input_and_refuse_contacts(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "a").await;
        let (_, contact) = firm.client_with_contact("Boulangerie").await;
        let empty = ServiceInput {
            category_id: None,
            title: "Vide".into(),
            deliverable_type: rappel::domain::DeliverableType::Documents,
            lead_days: 10,
            items: vec![],
            reminder_policy: None,
        };
        let (code, field, _) = refusal(ops::catalog::create_service(firm.env(), &firm.admin(), &empty).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("items")));
        let (code, _, _) = refusal(
            ops::catalog::create_category(firm.env(), &contact_actor(&firm, &contact), "Fiscal").await,
        );
        assert_eq!(code, "FORBIDDEN");
        let member = firm.member("paul").await;
        ops::catalog::create_category(firm.env(), &member, "Fiscal").await.expect("a member may");
        let (code, _, message) = refusal(ops::catalog::create_category(firm.env(), &firm.admin(), "Fiscal").await);
        assert_eq!((code, message.as_str()), ("CONFLICT", "a category named \"Fiscal\" exists"));
        // An item id of another service is refused, and the service keeps its items.
        let service = firm.service("TVA", 10).await;
        let other = firm.service("Paie", 5).await;
        let mut conn = db.pool.get().await.expect("conn");
        let foreign = catalog::list_items(&mut conn.as_db(), firm.firm.id, other.id).await.expect("items");
        drop(conn);
        let update = ServiceInput {
            items: vec![ServiceItemInput {
                id: Some(foreign[0].id),
                kind: rappel::domain::ItemKind::Task,
                title: "Volé".into(),
            }],
            ..empty.clone()
        };
        let (code, field, _) = refusal(ops::catalog::update_service(firm.env(), &firm.admin(), service.id, &update).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("items.0.id")));
        let mut conn = db.pool.get().await.expect("conn");
        let kept = catalog::list_items(&mut conn.as_db(), firm.firm.id, service.id).await.expect("items");
        assert_eq!(kept.len(), 2, "nothing changed");
    }
}

backend_test! {
    async fn archiving_a_client_ends_its_contacts_tokens_and_another_firm_cannot(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "a").await;
        let other = FirmFixture::create(&db.pool, "b").await;
        let (client, contact) = firm.client_with_contact("Boulangerie").await;
        let session = ops::access::create_contact_access_token(firm.env(), &firm.admin(), contact.id, 30)
            .await
            .expect("token");
        let (code, _, _) = refusal(ops::clients::archive_client(other.env(), &other.admin(), client.id).await);
        assert_eq!(code, "NOT_FOUND", "another firm's client is not found");
        let valid = |token: String| {
            let pool = db.pool.clone();
            async move {
                let mut conn = pool.get().await.expect("conn");
                tokens::find_valid(&mut conn.as_db(), &token_hash(&token), &[TokenKind::Contact], Utc::now().naive_utc())
                    .await
                    .expect("read")
                    .is_some()
            }
        };
        assert!(valid(session.token.clone()).await);
        let archived = ops::clients::archive_client(firm.env(), &firm.admin(), client.id).await.expect("archived");
        assert!(archived.archived_at.is_some());
        assert!(!valid(session.token.clone()).await, "the contact's token ended with its client");
        let mut conn = db.pool.get().await.expect("conn");
        let stored = clients::find_contact(&mut conn.as_db(), firm.firm.id, contact.id)
            .await
            .expect("contact");
        drop(conn);
        assert!(
            stored.archived_at.is_none(),
            "archiving a client does not archive its contacts"
        );
        ops::clients::archive_contact(firm.env(), &firm.admin(), contact.id)
            .await
            .expect("contact archived");
        let (code, field, _) = refusal(
            ops::access::create_contact_access_token(firm.env(), &firm.admin(), contact.id, 30)
                .await,
        );
        assert_eq!(
            (code, field.as_deref()),
            ("BAD_USER_INPUT", Some("contactId")),
            "an archived contact gets no token"
        );
    }
}
backend_test! {
    async fn signing_generates_the_catch_up_and_a_signed_mission_keeps_its_past(db: TestDb) {
        let (firm, _, mission_id) = signed(&db).await;
        let mut conn = db.pool.get().await.expect("conn");
        let requests = list_requests(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("requests");
        drop(conn);
        assert!(requests.len() >= 3, "past periods are created at signing: {}", requests.len());
        assert!(requests.iter().all(|request| request.created_on <= firm.today()));
        let (code, field, _) = refusal(ops::missions::sign_mission(firm.env(), &firm.admin(), mission_id).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("id")));
        let moved = MissionUpdateInput {
            start_date: Some(firm.today() - Duration::days(10)),
            ..MissionUpdateInput::default()
        };
        let (code, field, _) = refusal(ops::missions::update_mission(firm.env(), &firm.admin(), mission_id, &moved).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("startDate")));
        let early_end = MissionUpdateInput {
            end_date: Some(firm.today() - Duration::days(1)),
            ..MissionUpdateInput::default()
        };
        let (code, field, _) = refusal(ops::missions::update_mission(firm.env(), &firm.admin(), mission_id, &early_end).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("endDate")));
        let (code, field, _) = refusal(
            ops::missions::end_mission(firm.env(), &firm.admin(), mission_id, Some(firm.today() + Duration::days(5))).await,
        );
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("endDate")));
        let mut conn = db.pool.get().await.expect("conn");
        let after = list_requests(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("requests");
        assert_eq!(after.len(), requests.len(), "refusals change nothing");
    }
}

backend_test! {
    async fn extending_a_signed_mission_generates_the_periods_after_the_old_end(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "a").await;
        let service = firm.service("TVA", 10).await;
        let (client, _) = firm.client_with_contact("Boulangerie").await;
        let today = firm.today();
        let mission = ops::missions::create_mission(
            firm.env(),
            &firm.admin(),
            &ops::missions::MissionInput {
                client_id: client.id,
                name: "Courte".into(),
                start_date: today - Duration::days(150),
                // Two months are 59 to 62 days: always three monthly periods.
                end_date: Some(today - Duration::days(150 - 65)),
                lines: vec![ops::missions::MissionLineInput {
                    service_id: service.id,
                    frequency: rappel::domain::schedule::Frequency::Monthly,
                    first_due_date: None,
                    quantity: None,
                    rrule: None,
                    working_day_adjustment: None,
                }],
            },
        )
        .await
        .expect("mission");
        ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id).await.expect("signed");
        let count = || {
            let pool = db.pool.clone();
            let firm_id = firm.firm.id;
            async move {
                let mut conn = pool.get().await.expect("conn");
                list_requests(&mut conn.as_db(), firm_id, None, &all(), &everything()).await.expect("requests").len()
            }
        };
        let before = count().await;
        assert_eq!(before, 3, "three monthly periods in 65 days");
        let extended = MissionUpdateInput {
            end_date: Some(today + Duration::days(60)),
            ..MissionUpdateInput::default()
        };
        ops::missions::update_mission(firm.env(), &firm.admin(), mission.id, &extended).await.expect("extended");
        let after = count().await;
        assert!(after >= before + 2, "the periods after the old end up to today are created: {before} -> {after}");
    }
}

backend_test! {
    async fn cancelling_a_mission_cancels_its_open_work_and_tells_the_webhooks(db: TestDb) {
        let (firm, _, mission_id) = signed(&db).await;
        let control = DeliveryControl {
            allow_private_addresses: true,
            ..DeliveryControl::default()
        };
        ops::webhooks::create_endpoint(
            firm.env(),
            &control,
            &firm.admin(),
            "http://127.0.0.1:9/hook",
            &["information_request.closed".to_string()],
            None,
        )
        .await
        .expect("endpoint");
        let cancelled = ops::missions::cancel_mission(firm.env(), &firm.admin(), mission_id).await.expect("cancelled");
        assert_eq!(cancelled.status, MissionStatus::Cancelled);
        let mut conn = db.pool.get().await.expect("conn");
        let requests = list_requests(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("requests");
        assert!(!requests.is_empty());
        assert!(requests.iter().all(|request| request.status == RequestStatus::Cancelled));
        let tasks = list_tasks(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("tasks");
        assert!(tasks.iter().all(|task| task.status == TaskStatus::Cancelled));
        let deliveries = outbox::list_deliveries(&mut conn.as_db(), firm.firm.id, None, None, &rappel::db::page::Keyset::first(10_000))
            .await
            .expect("deliveries");
        drop(conn);
        let closed_webhooks = deliveries
            .iter()
            .filter(|delivery| {
                delivery.webhook_endpoint_id.is_some() && delivery.event == DeliveryEvent::RequestClosed
            })
            .count();
        assert_eq!(closed_webhooks, requests.len(), "one closed event per cancelled request, in the same transaction");
        let (code, field, _) = refusal(ops::missions::cancel_mission(firm.env(), &firm.admin(), mission_id).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("id")));
        // A cancelled task cannot change.
        let mut conn = db.pool.get().await.expect("conn");
        let task = list_tasks(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("tasks")[0].id;
        drop(conn);
        let (code, field, _) = refusal(ops::work::set_task_status(firm.env(), &firm.admin(), task, TaskStatus::Done).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("id")));
    }
}

backend_test! {
    async fn a_contact_answers_its_own_requests_only_while_they_are_open(db: TestDb) {
        let (firm, contact, _) = signed(&db).await;
        let mut conn = db.pool.get().await.expect("conn");
        let requests = list_requests(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("requests");
        drop(conn);
        let (first, second) = (requests[0].id, requests[1].id);
        let as_contact = contact_actor(&firm, &contact);
        let nothing = AnswerInput { message: Some("   ".into()), nothing_to_report: false, files: Vec::new() };
        let (code, field, _) = refusal(ops::answers::answer_request(firm.env(), &as_contact, first, &nothing).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("message")));
        let answer = AnswerInput { message: Some("Voici les factures".into()), nothing_to_report: false, files: Vec::new() };
        let (code, _, _) = refusal(ops::answers::answer_request(firm.env(), &firm.admin(), first, &answer).await);
        assert_eq!(code, "FORBIDDEN", "staff do not answer for the client");
        let answered = ops::answers::answer_request(firm.env(), &as_contact, first, &answer).await.expect("answered");
        assert_eq!(answered.status, RequestStatus::Answered);
        // Another client's contact does not see the request.
        let (_, stranger) = firm.client_with_contact("Garage").await;
        let (code, _, _) = refusal(
            ops::answers::answer_request(firm.env(), &contact_actor(&firm, &stranger), second, &answer).await,
        );
        assert_eq!(code, "NOT_FOUND");
        ops::work::close_request(firm.env(), &firm.admin(), second).await.expect("closed");
        let (code, field, _) = refusal(ops::answers::answer_request(firm.env(), &as_contact, second, &answer).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("id")));
        let (code, _, _) = refusal(ops::work::close_request(firm.env(), &firm.admin(), second).await);
        assert_eq!(code, "BAD_USER_INPUT", "a closed request cannot be closed again");
        let reopened = ops::work::reopen_request(firm.env(), &firm.admin(), second).await.expect("reopened");
        assert_eq!(reopened.status, RequestStatus::Open);
    }
}

backend_test! {
    async fn only_admins_manage_members_and_the_last_admin_stays(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "a").await;
        let member = firm.member("paul").await;
        let (code, _, _) = refusal(
            ops::staff::invite_staff_member(firm.env(), &member, "jean@a.example.fr", "Jean", Role::Member).await,
        );
        assert_eq!(code, "FORBIDDEN");
        let (code, field, _) = refusal(ops::staff::remove_staff_member(firm.env(), &firm.admin(), firm.admin_id).await);
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("id")));
        let (code, _, message) = refusal(
            ops::staff::invite_staff_member(firm.env(), &firm.admin(), &firm.admin_email, "Twin", Role::Member).await,
        );
        assert_eq!(code, "CONFLICT");
        assert!(!message.contains(&firm.admin_email), "names no one: {message}");
        let Actor::Staff { user_id, .. } = member else { unreachable!() };
        let session = ops::access::login(firm.env(), None, &format!("paul@{}.example.fr", firm.firm.id), "wrong".into(), 8).await;
        assert_eq!(refusal(session).0, "UNAUTHENTICATED");
        ops::staff::remove_staff_member(firm.env(), &firm.admin(), user_id).await.expect("removed");
        let (code, _, _) = refusal(ops::staff::remove_staff_member(firm.env(), &firm.admin(), user_id).await);
        assert_eq!(code, "NOT_FOUND", "a removed member is gone");
    }
}

backend_test! {
    async fn webhook_endpoints_are_for_admins_and_need_a_public_https_url(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "a").await;
        let member = firm.member("paul").await;
        let strict = DeliveryControl::default();
        let events = ["information_request.created".to_string()];
        let (code, field, _) = refusal(
            ops::webhooks::create_endpoint(firm.env(), &strict, &firm.admin(), "http://127.0.0.1/hook", &events, None).await,
        );
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("url")));
        let (code, field, _) = refusal(
            ops::webhooks::create_endpoint(firm.env(), &strict, &firm.admin(), "https://hooks.example.com/in", &["nope".to_string()], None).await,
        );
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("events")));
        let (code, _, _) = refusal(
            ops::webhooks::create_endpoint(firm.env(), &strict, &member, "https://hooks.example.com/in", &events, None).await,
        );
        assert_eq!(code, "FORBIDDEN");
        let mut conn = db.pool.get().await.expect("conn");
        assert!(outbox::list_endpoints(&mut conn.as_db(), firm.firm.id).await.expect("list").is_empty());
        drop(conn);
        let (code, _, _) = refusal(ops::webhooks::delete_endpoint(firm.env(), &firm.admin(), 999_999).await);
        assert_eq!(code, "NOT_FOUND");
    }
}

backend_test! {
    async fn a_sign_in_link_works_until_it_expires_and_only_the_system_opens_sessions_without_a_password(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "a").await;
        let (_, contact) = firm.client_with_contact("Boulangerie").await;
        let link = new_token();
        let now = Utc::now().naive_utc();
        let mut conn = db.pool.get().await.expect("conn");
        tokens::insert(
            &mut conn.as_db(),
            &NewAccessToken {
                firm_id: firm.firm.id,
                token_hash: &token_hash(&link),
                kind: TokenKind::SignInLink,
                user_id: None,
                contact_id: Some(contact.id),
                expires_at: Some(now + Duration::hours(1)),
                created_at: now,
            },
        )
        .await
        .expect("link");
        drop(conn);
        let session = ops::access::redeem_sign_in_link(firm.env(), &link, 30).await.expect("redeemed");
        assert!(session.token.starts_with("rpl_"));
        let again = ops::access::redeem_sign_in_link(firm.env(), &link, 30).await.expect("a link is reusable");
        assert_ne!(again.token, session.token);
        let (code, _, message) = refusal(ops::access::redeem_sign_in_link(firm.env(), "rpl_unknown", 30).await);
        assert_eq!((code, message.as_str()), ("UNAUTHENTICATED", "this sign-in link is invalid or expired"));
        let (code, _, _) = refusal(ops::access::open_staff_session(firm.env(), &firm.admin(), firm.admin_id, 8).await);
        assert_eq!(code, "FORBIDDEN");
        let system = Actor::System { firm_id: firm.firm.id };
        ops::access::open_staff_session(firm.env(), &system, firm.admin_id, 8).await.expect("system session");
        let login = ops::access::login(firm.env(), None, &ops::access::login_email(" admin@A.EXAMPLE.FR "), PASSWORD.into(), 8).await;
        let login = login.expect("the domain's case does not matter");
        assert!(!ops::access::sign_out(firm.env(), 0).await.expect("sign out"), "no such token");
        let _ = login;
    }
}

backend_test! {
    async fn a_line_added_to_a_signed_mission_starts_today_or_later_and_is_generated_at_once(db: TestDb) {
        let (firm, _, mission_id) = signed(&db).await;
        let service = firm.service("Paie", 0).await;
        let line = |first_due_date| ops::missions::MissionLineInput {
            service_id: service.id,
            frequency: rappel::domain::schedule::Frequency::None,
            first_due_date: Some(first_due_date),
            quantity: Some(2),
            rrule: None,
            working_day_adjustment: None,
        };
        let (code, field, _) = refusal(
            ops::missions::add_mission_line(firm.env(), &firm.admin(), mission_id, &line(firm.today() - Duration::days(1))).await,
        );
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("lines.1.firstDueDate")));
        let count = || {
            let pool = db.pool.clone();
            let firm_id = firm.firm.id;
            async move {
                let mut conn = pool.get().await.expect("conn");
                list_requests(&mut conn.as_db(), firm_id, None, &all(), &everything()).await.expect("requests").len()
            }
        };
        let before = count().await;
        ops::missions::add_mission_line(firm.env(), &firm.admin(), mission_id, &line(firm.today()))
            .await
            .expect("added");
        assert_eq!(count().await, before + 2, "two copies due today, lead 0: created at once");
        ops::missions::end_mission(firm.env(), &firm.admin(), mission_id, None).await.expect("ended");
        let (code, field, _) = refusal(
            ops::missions::add_mission_line(firm.env(), &firm.admin(), mission_id, &line(firm.today())).await,
        );
        assert_eq!((code, field.as_deref()), ("BAD_USER_INPUT", Some("missionId")));
    }
}

backend_test! {
    async fn a_task_is_assigned_to_an_active_member_of_its_firm_only(db: TestDb) {
        let (firm, _, _) = signed(&db).await;
        let other = FirmFixture::create(&db.pool, "b").await;
        let member = firm.member("paul").await;
        let Actor::Staff { user_id: member_id, .. } = member else { unreachable!() };
        let mut conn = db.pool.get().await.expect("conn");
        let task = list_tasks(&mut conn.as_db(), firm.firm.id, None, &all(), &everything()).await.expect("tasks")[0].id;
        drop(conn);
        let (code, _, message) = refusal(
            ops::work::assign_task(firm.env(), &firm.admin(), task, Some(other.admin_id)).await,
        );
        assert_eq!((code, message.as_str()), ("NOT_FOUND", "staff member not found"));
        let (code, _, _) = refusal(ops::work::assign_task(other.env(), &other.admin(), task, None).await);
        assert_eq!(code, "NOT_FOUND", "another firm's task");
        let assigned = ops::work::assign_task(firm.env(), &member, task, Some(member_id)).await.expect("assigned");
        assert_eq!(assigned.assignee_id, Some(member_id));
        ops::staff::remove_staff_member(firm.env(), &firm.admin(), member_id).await.expect("removed");
        let (code, _, _) = refusal(
            ops::work::assign_task(firm.env(), &firm.admin(), task, Some(member_id)).await,
        );
        assert_eq!(code, "NOT_FOUND", "a removed member takes no task");
        let done = ops::work::set_task_status(firm.env(), &firm.admin(), task, TaskStatus::Done).await.expect("done");
        assert!(done.completed_at.is_some());
    }
}
