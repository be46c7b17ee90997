//! The client portal over real HTTP: the `rappel` binary on a real port, cookies handled by
//! hand, the firm's side checked through GraphQL, new links received by a real SMTP sink.

use std::time::Duration;

use rappel::graphql::Caller;
use reqwest::redirect::Policy;
use serde_json::json;
use sha2::Digest as _;

use crate::backend_test;
use crate::support::app::{TestApp, World};
use crate::support::server::ServerProcess;
use crate::support::smtp::{SmtpSink, parse};

/// A client that follows no redirect (each step is checked) and keeps no cookie.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Stores a portal link for contact A, valid `hours` (negative: already expired).
async fn link_for(app: &TestApp, contact: &Caller, hours: i64) -> String {
    let Caller::Contact(contact) = contact else {
        panic!("a contact");
    };
    let link = rappel::auth::new_token();
    let mut conn = app.db.pool.get().await.expect("connection");
    let now = chrono::Utc::now().naive_utc();
    rappel::db::tokens::insert(
        &mut conn.as_db(),
        &rappel::db::tokens::NewAccessToken {
            firm_id: contact.firm_id,
            token_hash: &rappel::auth::token_hash(&link),
            kind: rappel::domain::TokenKind::SignInLink,
            user_id: None,
            contact_id: Some(contact.contact_id),
            expires_at: Some(now + chrono::Duration::hours(hours)),
            created_at: now - chrono::Duration::hours(hours.abs() + 1),
        },
    )
    .await
    .expect("link stored");
    link
}

/// Presses the link's button; returns the session cookie's `name=value` and the whole
/// `Set-Cookie` header.
async fn press_button(server: &ServerProcess, link: &str, request: &str) -> (String, String) {
    let request_row = crate::support::app::row_id(request).to_string();
    let response = browser()
        .post(format!("{}/sign-in", server.base_url))
        .header("origin", &server.base_url)
        .form(&[("token", link), ("request", request_row.as_str())])
        .send()
        .await
        .expect("POST /sign-in");
    assert_eq!(response.status().as_u16(), 303, "the button signs in");
    assert_eq!(
        response.headers()["location"],
        format!("/portal/requests/{request_row}").as_str()
    );
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .to_string();
    let cookie = set_cookie.split(';').next().expect("pair").to_string();
    (cookie, set_cookie)
}

async fn get(server: &ServerProcess, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = browser().get(format!("{}{path}", server.base_url));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("a csrf field in {page}"))
        + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().expect("value").to_string()
}

/// A `multipart/form-data` body as a browser sends it: text fields, then the file.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----rappel-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts the answer form (multipart) from `origin`.
async fn post_answer(
    server: &ServerProcess,
    cookie: &str,
    origin: &str,
    request: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> reqwest::Response {
    let request_row = crate::support::app::row_id(request);
    let (content_type, body) = multipart(fields, file);
    browser()
        .post(format!(
            "{}/portal/requests/{request_row}/answer",
            server.base_url
        ))
        .header("cookie", cookie)
        .header("origin", origin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST answer")
}

/// How many files a folder holds, in all its subfolders.
fn files_in(path: &std::path::Path) -> usize {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let path = entry.path();
                    if path.is_dir() { files_in(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The request's status and answers as the firm sees them.
async fn firm_view(app: &TestApp, world: &World, request: &str) -> serde_json::Value {
    app.ok(
        &world.admin_a,
        "query($id: ID!) { firm { informationRequest(id: $id) { status answers { nodes { message nothingToReport } } } } }",
        json!({ "id": request }),
    )
    .await["firm"]["informationRequest"]
        .clone()
}

backend_test!(
    async fn an_emailed_link_opens_the_portal_again_and_again_through_its_button_with_a_safe_cookie(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let link = link_for(&app, &world.contact_a, 72).await;
        let server = ServerProcess::start(&app.db.url, &[]);
        let request = &world.firm_a.request;
        let request_row = crate::support::app::row_id(request);

        for _ in 0..2 {
            let (status, page) = get(
                &server,
                &format!("/sign-in?token={link}&request={request_row}"),
                None,
            )
            .await;
            assert_eq!(status, 200, "opening the link spends nothing");
            assert!(page.contains("method=\"post\""), "{page}");
        }
        let (cookie, set_cookie) = press_button(&server, &link, request).await;
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
            assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
        }
        assert!(
            !set_cookie.contains("Secure"),
            "plain http here: {set_cookie}"
        );
        let max_age: i64 = set_cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|value| value.parse().ok())
            .expect("Max-Age");
        assert!((12 * 3600 - 60..=12 * 3600).contains(&max_age), "{max_age}");

        let response = browser()
            .get(format!("{}/portal/requests/{request_row}", server.base_url))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let csp = headers["content-security-policy"].to_str().expect("text");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let page = response.text().await.expect("body");
        assert!(
            page.contains("Merci de déposer vos éléments du mois"),
            "{page}"
        );
        assert!(page.contains("Cabinet A"), "{page}");
        assert!(page.contains("Au plus tard le "), "{page}");
        for firm_only in ["Préparer la déclaration", "TVA mensuelle", "Rappel TVA"] {
            assert!(!page.contains(firm_only), "{firm_only} leaked: {page}");
        }
        assert!(!page.contains("<script>"), "no inline script: {page}");
        assert!(page.contains("src=\"/portal/assets/portal.js\""), "{page}");
        let (status, list) = get(&server, "/portal", Some(&cookie)).await;
        assert_eq!(status, 200);
        assert!(list.contains("Merci de déposer vos éléments du mois"));
        assert!(
            list.contains("En retard"),
            "past due dates are marked: {list}"
        );
        for page in [&page, &list] {
            assert!(!page.contains("rpl_"), "no token on a portal page: {page}");
        }
        let (status, script) = get(&server, "/portal/assets/portal.js", None).await;
        assert!(status == 200 && script.contains("upload"), "{script}");

        // Another device: the same link works again, and opens another session.
        let (second_cookie, _) = press_button(&server, &link, request).await;
        assert_ne!(second_cookie, cookie);
        // The first device, already signed in, goes straight from the link to the request.
        let response = browser()
            .get(format!(
                "{}/sign-in?token={link}&request={request_row}",
                server.base_url
            ))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(
            response.headers()["location"],
            format!("/portal/requests/{request_row}").as_str()
        );

        // Signing out ends that session only.
        let csrf = csrf_of(&list);
        let response = browser()
            .post(format!("{}/portal/sign-out", server.base_url))
            .header("cookie", &cookie)
            .header("origin", &server.base_url)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("sign out");
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["set-cookie"]
                .to_str()
                .expect("text")
                .contains("Max-Age=0")
        );
        let (status, page) = get(&server, "/portal", Some(&cookie)).await;
        assert_eq!(status, 401, "{page}");
        assert!(page.contains("/portal/new-link"), "{page}");
        let (status, _) = get(&server, "/portal", Some(&second_cookie)).await;
        assert_eq!(status, 200, "the other device stays signed in");
        let journal = {
            let mut conn = app.db.pool.get().await.expect("connection");
            rappel::db::journal::count_kinds(
                &mut conn.as_db(),
                &["contact.signed_in", "contact.signed_out"],
            )
            .await
            .expect("journal")
        };
        assert_eq!(journal, 3, "two sign-ins and one sign-out are journaled");
    }
);

backend_test!(
    async fn answers_from_the_portal_change_the_request_the_firm_sees_and_forged_posts_change_nothing(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let link = link_for(&app, &world.contact_a, 72).await;
        let files = tempfile::tempdir().expect("a storage folder");
        let storage_url = files.path().display().to_string();
        let server =
            ServerProcess::start(&app.db.url, &[("RAPPEL_STORAGE_URL", storage_url.as_str())]);
        let request = world.firm_a.request.clone();
        let request_row = crate::support::app::row_id(&request);
        let (cookie, _) = press_button(&server, &link, &request).await;
        let (_, page) = get(
            &server,
            &format!("/portal/requests/{request_row}"),
            Some(&cookie),
        )
        .await;
        let csrf = csrf_of(&page);
        assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
        assert!(
            page.contains("name=\"files\" type=\"file\" multiple"),
            "{page}"
        );

        // Forged posts: another site, no Origin, no token, a wrong token.
        let forged = [
            ("https://evil.example", csrf.clone()),
            (server.base_url.as_str(), String::new()),
            (server.base_url.as_str(), "0".repeat(64)),
        ];
        for (origin, token) in &forged {
            let response = post_answer(
                &server,
                &cookie,
                origin,
                &request,
                &[("csrf", token), ("message", "forged")],
                None,
            )
            .await;
            assert_eq!(response.status().as_u16(), 403, "{origin} {token}");
        }
        let response = browser()
            .post(format!(
                "{}/portal/requests/{request_row}/answer",
                server.base_url
            ))
            .header("cookie", &cookie)
            .header(
                "content-type",
                multipart(&[("csrf", &csrf), ("message", "no origin")], None).0,
            )
            .body(multipart(&[("csrf", &csrf), ("message", "no origin")], None).1)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), 403, "a post without Origin");
        let view = firm_view(&app, &world, &request).await;
        assert_eq!(view["status"], "OPEN", "{view}");
        assert_eq!(view["answers"]["nodes"].as_array().map(Vec::len), Some(0));

        // An empty answer and an executable renamed .pdf are refused clearly; nothing changes.
        let response = post_answer(
            &server,
            &cookie,
            &server.base_url,
            &request,
            &[("csrf", &csrf), ("message", "  ")],
            None,
        )
        .await;
        assert_eq!(response.status().as_u16(), 400);
        let body = response.text().await.expect("body");
        assert!(body.contains("Écrivez un message"), "{body}");
        let mut executable = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        executable.resize(4096, 0x90);
        let response = post_answer(
            &server,
            &cookie,
            &server.base_url,
            &request,
            &[("csrf", &csrf), ("message", "with a program")],
            Some(("releve.pdf", &executable)),
        )
        .await;
        assert_eq!(response.status().as_u16(), 400);
        let body = response.text().await.expect("body");
        assert!(
            body.contains("releve.pdf"),
            "the refusal names the file: {body}"
        );
        let view = firm_view(&app, &world, &request).await;
        assert_eq!(view["status"], "OPEN", "{view}");
        assert_eq!(view["answers"]["nodes"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            files_in(files.path()),
            0,
            "nothing of a refused file is stored"
        );

        // A PDF deposited from the portal: the page lists it, and the contact and the firm
        // download the same bytes.
        let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        pdf.extend((0..50_000).map(|i: usize| (i * 7 % 251) as u8));
        let response = post_answer(
            &server,
            &cookie,
            &server.base_url,
            &request,
            &[("csrf", &csrf), ("message", "")],
            Some(("Relevé janvier.pdf", &pdf)),
        )
        .await;
        assert_eq!(response.status().as_u16(), 303, "a file alone is an answer");
        let (_, page) = get(
            &server,
            &format!("/portal/requests/{request_row}"),
            Some(&cookie),
        )
        .await;
        assert!(page.contains("Relevé janvier.pdf"), "{page}");
        assert!(page.contains("(49 Ko)"), "the size in words: {page}");
        let file_path = page
            .split("href=\"/files/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|id| format!("/files/{id}"))
            .expect("a download link on the page");
        let download = browser()
            .get(format!("{}{file_path}", server.base_url))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("download");
        assert_eq!(download.status().as_u16(), 200);
        assert_eq!(download.bytes().await.expect("bytes").as_ref(), &pdf[..]);
        let anonymous = browser()
            .get(format!("{}{file_path}", server.base_url))
            .send()
            .await
            .expect("download");
        assert_eq!(anonymous.status().as_u16(), 401, "no session, no file");
        let firm = app
            .ok(
                &world.admin_a,
                "query($id: ID!) { firm { informationRequest(id: $id) { status answers { nodes { files { name sha256 } } } } } }",
                json!({ "id": request }),
            )
            .await;
        let request_view = &firm["firm"]["informationRequest"];
        assert_eq!(request_view["status"], "ANSWERED");
        assert_eq!(
            request_view["answers"]["nodes"][0]["files"][0]["sha256"],
            format!("{:x}", sha2::Sha256::digest(&pdf)),
        );

        // A message, then "nothing to report".
        let response = post_answer(
            &server,
            &cookie,
            &server.base_url,
            &request,
            &[
                ("csrf", &csrf),
                ("message", "Voici les factures <b>de janvier</b>"),
            ],
            None,
        )
        .await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(
            response.headers()["location"],
            format!("/portal/requests/{request_row}?sent=1").as_str()
        );
        let (status, page) = get(
            &server,
            &format!("/portal/requests/{request_row}?sent=1"),
            Some(&cookie),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            page.contains("Merci : votre réponse a bien été transmise à Cabinet A"),
            "{page}"
        );
        assert!(
            page.contains("Voici les factures &lt;b&gt;de janvier&lt;/b&gt;"),
            "escaped: {page}"
        );
        assert!(page.contains("Répondu"), "status in words: {page}");
        assert!(!page.contains("ANSWERED"), "no raw status: {page}");
        let response = post_answer(
            &server,
            &cookie,
            &server.base_url,
            &request,
            &[("csrf", &csrf), ("message", ""), ("nothing_to_report", "1")],
            None,
        )
        .await;
        assert_eq!(response.status().as_u16(), 303);
        let view = firm_view(&app, &world, &request).await;
        assert_eq!(view["status"], "ANSWERED", "{view}");
        assert_eq!(
            view["answers"]["nodes"],
            json!([
                { "message": null, "nothingToReport": false },
                { "message": "Voici les factures <b>de janvier</b>", "nothingToReport": false },
                { "message": null, "nothingToReport": true },
            ])
        );
        let (_, page) = get(
            &server,
            &format!("/portal/requests/{request_row}"),
            Some(&cookie),
        )
        .await;
        assert!(page.contains("Rien à signaler"), "{page}");
    }
);

backend_test!(
    async fn another_clients_request_answers_404_with_the_same_page_as_a_missing_one(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let link = link_for(&app, &world.contact_a, 72).await;
        let server = ServerProcess::start(&app.db.url, &[]);
        let (cookie, _) = press_button(&server, &link, &world.firm_a.request).await;
        let (status, missing) = get(&server, "/portal/requests/999999", Some(&cookie)).await;
        assert_eq!(status, 404);
        for other in [&world.firm_a.other_client_request, &world.firm_b.request] {
            let (status, page) = get(
                &server,
                &format!("/portal/requests/{}", crate::support::app::row_id(other)),
                Some(&cookie),
            )
            .await;
            assert_eq!((status, &page), (404, &missing));
        }
        let (_, page) = get(
            &server,
            &format!(
                "/portal/requests/{}",
                crate::support::app::row_id(&world.firm_a.request)
            ),
            Some(&cookie),
        )
        .await;
        let csrf = csrf_of(&page);
        let response = post_answer(
            &server,
            &cookie,
            &server.base_url,
            &world.firm_a.other_client_request,
            &[("csrf", &csrf), ("nothing_to_report", "1")],
            None,
        )
        .await;
        assert_eq!(response.status().as_u16(), 404);
        let view = firm_view(&app, &world, &world.firm_a.other_client_request).await;
        assert_eq!(view["status"], "OPEN", "{view}");
        let (status, list) = get(&server, "/portal", Some(&cookie)).await;
        assert_eq!(status, 200);
        assert!(
            !list.contains(&format!(
                "/portal/requests/{}\"",
                crate::support::app::row_id(&world.firm_a.other_client_request)
            )),
            "{list}"
        );
    }
);

backend_test!(
    async fn an_expired_link_offers_a_new_one_which_arrives_by_email_and_says_the_same_for_an_unknown_address(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let expired = link_for(&app, &world.contact_a, -1).await;
        let sink = SmtpSink::start().await;
        let port = sink.port.to_string();
        let server = ServerProcess::start(
            &app.db.url,
            &[
                ("RAPPEL_SMTP_TRANSPORT", "smtp"),
                ("RAPPEL_SMTP_HOST", "127.0.0.1"),
                ("RAPPEL_SMTP_PORT", &port),
                ("RAPPEL_SMTP_TLS", "none"),
            ],
        );
        let (status, page) = get(&server, &format!("/sign-in?token={expired}"), None).await;
        assert_eq!(status, 401);
        assert!(page.contains("Lien expiré"), "{page}");
        assert!(page.contains("action=\"/portal/new-link\""), "{page}");
        assert!(page.contains("M&#39;envoyer un nouveau lien"), "{page}");
        let response = browser()
            .post(format!("{}/sign-in", server.base_url))
            .header("origin", &server.base_url)
            .form(&[("token", expired.as_str())])
            .send()
            .await
            .expect("POST");
        assert_eq!(
            response.status().as_u16(),
            401,
            "the button of an expired link"
        );

        let ask = |email: &'static str| {
            let base = server.base_url.clone();
            async move {
                let response = browser()
                    .post(format!("{base}/portal/new-link"))
                    .header("origin", &base)
                    .form(&[("email", email)])
                    .send()
                    .await
                    .expect("POST");
                (
                    response.status().as_u16(),
                    response.text().await.expect("body"),
                )
            }
        };
        let known = ask("Contact0@A.example.fr").await;
        let unknown = ask("nobody@nowhere.example").await;
        assert_eq!(known.0, 200);
        assert_eq!(
            known, unknown,
            "the same page whether the address is known or not"
        );
        assert!(
            known.1.contains("Consultez votre messagerie"),
            "{}",
            known.1
        );

        let mails = sink.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].rcpt_to, ["contact0@a.example.fr"]);
        let mail = parse(&mails[0].data);
        let text = mail.text_body.as_deref().expect("text");
        let start = text.find("/sign-in?token=").expect("a link") + "/sign-in?token=".len();
        let token: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let (status, page) = get(&server, &format!("/sign-in?token={token}"), None).await;
        assert_eq!(status, 200, "the new link works: {page}");
        let (cookie, _) = {
            let response = browser()
                .post(format!("{}/sign-in", server.base_url))
                .header("origin", &server.base_url)
                .form(&[("token", token.as_str())])
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status().as_u16(), 303);
            assert_eq!(response.headers()["location"], "/portal");
            let set = response.headers()["set-cookie"]
                .to_str()
                .expect("text")
                .to_string();
            (set.split(';').next().expect("pair").to_string(), set)
        };
        let (status, _) = get(&server, "/portal", Some(&cookie)).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            sink.messages().len(),
            1,
            "nothing was sent for the unknown address"
        );
    }
);

backend_test!(
    async fn portal_pages_speak_the_contacts_language_with_dates_in_words(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let link = link_for(&app, &world.contact_a, 72).await;
        let server = ServerProcess::start(&app.db.url, &[]);
        let request = &world.firm_a.request;
        let request_row = crate::support::app::row_id(request);
        let (cookie, _) = press_button(&server, &link, request).await;
        let due: String = app
            .ok(
                &world.admin_a,
                "query($id: ID!) { firm { informationRequest(id: $id) { dueDate } } }",
                json!({ "id": request }),
            )
            .await["firm"]["informationRequest"]["dueDate"]
            .as_str()
            .expect("date")
            .to_string();
        let date: chrono::NaiveDate = due.parse().expect("date");
        let (_, french) = get(
            &server,
            &format!("/portal/requests/{request_row}"),
            Some(&cookie),
        )
        .await;
        let french_date =
            rappel::delivery::email::format_due_date(date, rappel::domain::Language::French);
        assert!(
            french.contains(&format!("Au plus tard le {french_date}")),
            "{french_date}: {french}"
        );
        assert!(french.contains("lang=\"fr\""));
        app.ok(
            &world.admin_a,
            "mutation($id: ID!) { updateContact(input: { id: $id, name: \"Contact\", email: \"contact0@a.example.fr\", language: ENGLISH }) { id } }",
            json!({ "id": world.firm_a.contact }),
        )
        .await;
        let (_, english) = get(
            &server,
            &format!("/portal/requests/{request_row}"),
            Some(&cookie),
        )
        .await;
        let english_date =
            rappel::delivery::email::format_due_date(date, rappel::domain::Language::English);
        assert!(
            english.contains(&format!("Due by {english_date}")),
            "{english_date}: {english}"
        );
        assert!(
            english.contains("lang=\"en\"") && english.contains("Waiting for your answer"),
            "{english}"
        );
        assert!(!english.contains("OPEN"), "{english}");
    }
);

backend_test!(
    async fn an_unsubscribe_names_the_firm_and_the_address_shows_on_the_contact_and_can_be_undone(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let Caller::Contact(contact) = &world.contact_a else {
            panic!("a contact");
        };
        let token = rappel::auth::new_token();
        {
            let mut conn = app.db.pool.get().await.expect("connection");
            rappel::db::tokens::insert(
                &mut conn.as_db(),
                &rappel::db::tokens::NewAccessToken {
                    firm_id: contact.firm_id,
                    token_hash: &rappel::auth::token_hash(&token),
                    kind: rappel::domain::TokenKind::Unsubscribe,
                    user_id: None,
                    contact_id: Some(contact.contact_id),
                    expires_at: None,
                    created_at: chrono::Utc::now().naive_utc(),
                },
            )
            .await
            .expect("token");
        }
        let server = ServerProcess::start(&app.db.url, &[]);
        let (status, page) = get(&server, &format!("/unsubscribe?token={token}"), None).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("Cabinet A") && page.contains("contact0@a.example.fr"),
            "{page}"
        );
        let subscription = || async {
            app.ok(
                &world.admin_a,
                "query($id: ID!) { firm { client(id: $id) { contacts { nodes { notificationsEnabled unsubscribedAt } } } } }",
                json!({ "id": world.firm_a.client }),
            )
            .await["firm"]["client"]["contacts"]["nodes"][0]
                .clone()
        };
        assert_eq!(
            subscription().await["unsubscribedAt"],
            serde_json::Value::Null
        );
        let response = browser()
            .post(format!("{}/unsubscribe?token={token}", server.base_url))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("POST");
        assert_eq!(
            response.status().as_u16(),
            200,
            "one click, no Origin needed (RFC 8058)"
        );
        let page = response.text().await.expect("body");
        assert!(
            page.contains("/unsubscribe/undo?token="),
            "an undo button: {page}"
        );
        let after = subscription().await;
        assert_eq!(after["notificationsEnabled"], false);
        assert!(after["unsubscribedAt"].is_string(), "{after}");

        let forged = browser()
            .post(format!(
                "{}/unsubscribe/undo?token={token}",
                server.base_url
            ))
            .header("origin", "https://evil.example")
            .send()
            .await
            .expect("POST");
        assert_eq!(forged.status().as_u16(), 403);
        assert_eq!(subscription().await["notificationsEnabled"], false);
        let undone = browser()
            .post(format!(
                "{}/unsubscribe/undo?token={token}",
                server.base_url
            ))
            .header("origin", &server.base_url)
            .send()
            .await
            .expect("POST");
        assert_eq!(undone.status().as_u16(), 200);
        let back = subscription().await;
        assert_eq!(back["notificationsEnabled"], true);
        assert_eq!(back["unsubscribedAt"], serde_json::Value::Null);
        let journal = {
            let mut conn = app.db.pool.get().await.expect("connection");
            rappel::db::journal::count_kinds(
                &mut conn.as_db(),
                &["contact.unsubscribed", "contact.resubscribed"],
            )
            .await
            .expect("journal")
        };
        assert_eq!(journal, 2);
    }
);

backend_test!(
    async fn new_link_requests_are_rate_limited_per_address_by_the_sign_in_gate(db: TestDb) {
        let app = TestApp::new(db);
        World::build(&app).await;
        let server = ServerProcess::start(
            &app.db.url,
            &[("RAPPEL_AUTH_SIGN_IN_ATTEMPTS_PER_ACCOUNT", "3")],
        );
        let ask = |email: &'static str| {
            let base = server.base_url.clone();
            async move {
                browser()
                    .post(format!("{base}/portal/new-link"))
                    .header("origin", &base)
                    .form(&[("email", email)])
                    .send()
                    .await
                    .expect("POST")
            }
        };
        for _ in 0..3 {
            assert_eq!(ask("contact0@a.example.fr").await.status().as_u16(), 200);
        }
        let refused = ask("Contact0@A.example.fr").await;
        assert_eq!(refused.status().as_u16(), 429, "the same address, any case");
        assert!(refused.headers().contains_key("retry-after"));
        assert_eq!(
            ask("contact1@a.example.fr").await.status().as_u16(),
            200,
            "another address is not affected"
        );
    }
);
