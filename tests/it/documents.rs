//! Documents deposited with answers, over a real server: uploads through the GraphQL
//! multipart request spec, downloads through `/files/{id}` (bytes and SHA-256 unchanged),
//! refusals that keep nothing (too large, chunked or lying about its length, a renamed
//! executable, too many files, another firm's or client's file), the firm's email in the SMTP
//! sink and the webhook's file metadata; on the local folder and on S3 (moto on loopback).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::backend_test;
#[expect(unused_imports, reason = "backend_test! names TestDb by its full path")]
use crate::support::TestDb;
use crate::support::app::{PASSWORD, TestApp, World};
use crate::support::server::{ServerProcess, post_graphql};
use crate::support::smtp::SmtpSink;
use crate::support::webhooks;

const BOUNDARY: &str = "rappel-test-boundary-7d1f";
const ANSWER: &str = "mutation($input: AnswerRequestInput!) { \
    answerRequest(input: $input) { status \
    answers { nodes { id files { id name size mediaType sha256 downloadUrl } } } } }";

/// Bytes that start like a PDF.
fn pdf(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..size).map(|i| (i * 7 % 251) as u8));
    bytes
}

/// Bytes that start like a JPEG.
fn jpeg(size: usize) -> Vec<u8> {
    let mut bytes = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01".to_vec();
    bytes.extend((0..size).map(|i| (i * 13 % 253) as u8));
    bytes
}

/// An ELF executable's first bytes.
fn executable() -> Vec<u8> {
    let mut bytes = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0".to_vec();
    bytes.resize(4096, 0x90);
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A GraphQL multipart body: operations, map, then each file as `0`, `1`, ...
fn multipart_body(request_id: &str, message: Option<&str>, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let nulls: Vec<Value> = files.iter().map(|_| Value::Null).collect();
    let operations = json!({
        "query": ANSWER,
        "variables": { "input": { "id": request_id, "message": message, "files": nulls } },
    });
    let map: serde_json::Map<String, Value> = (0..files.len())
        .map(|i| (i.to_string(), json!([format!("variables.input.files.{i}")])))
        .collect();
    let mut body = Vec::new();
    let mut part = |headers: String, content: &[u8]| {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"operations\"".into(),
        operations.to_string().as_bytes(),
    );
    part(
        "Content-Disposition: form-data; name=\"map\"".into(),
        Value::Object(map).to_string().as_bytes(),
    );
    for (i, (name, content)) in files.iter().enumerate() {
        part(
            format!(
                "Content-Disposition: form-data; name=\"{i}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream"
            ),
            content,
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Posts an answer with files; returns the HTTP status and the JSON answer.
async fn upload(
    base_url: &str,
    token: &str,
    request_id: &str,
    message: Option<&str>,
    files: &[(&str, Vec<u8>)],
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/graphql"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart_body(request_id, message, files))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text })),
    )
}

/// Sends `body` over a raw connection, chunked or with `Content-Length: declared`; returns
/// the status line and the answer (the server may close early: a write error is no failure).
async fn raw_post(base_url: &str, token: &str, body: &[u8], declared: Option<usize>) -> String {
    let address = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let framing = match declared {
        Some(length) => format!("Content-Length: {length}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".into(),
    };
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}Connection: close\r\n\r\n"
    );
    let writer = async {
        stream.write_all(head.as_bytes()).await?;
        match declared {
            Some(_) => stream.write_all(body).await?,
            None => {
                for chunk in body.chunks(256 * 1024) {
                    stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    stream.write_all(chunk).await?;
                    stream.write_all(b"\r\n").await?;
                }
                stream.write_all(b"0\r\n\r\n").await?;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = writer.await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Downloads a file: status, headers and bytes.
async fn download(url: &str, token: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("download sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("bytes").to_vec();
    (status, headers, bytes)
}

/// How many objects a storage holds.
enum Objects {
    Folder(std::path::PathBuf),
    S3 { endpoint: String, bucket: String },
}

impl Objects {
    async fn count(&self) -> usize {
        match self {
            Objects::Folder(path) => count_files(path),
            Objects::S3 { endpoint, bucket } => {
                let listing = reqwest::get(format!("{endpoint}/{bucket}?list-type=2"))
                    .await
                    .expect("list")
                    .text()
                    .await
                    .expect("listing");
                listing.matches("<Key>").count()
            }
        }
    }
}

fn count_files(path: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

async fn file_rows(app: &TestApp) -> usize {
    let data = app
        .ok(
            &app.caller(&admin_token_of(app).await).await,
            "{ firm { files { totalCount } } }",
            json!({}),
        )
        .await;
    data["firm"]["files"]["totalCount"].as_u64().expect("count") as usize
}

async fn admin_token_of(app: &TestApp) -> String {
    app.login("admin@a.example.fr", PASSWORD).await.0
}

/// The whole story on one storage: upload, download, refusals, email and webhook.
async fn documents_round_trip(app: &TestApp, storage_env: &[(&str, &str)], objects: Objects) {
    let world = World::build(app).await;
    let mut sink = SmtpSink::start().await;
    let smtp_port = sink.port.to_string();
    let mut settings: Vec<(&str, &str)> = vec![
        ("RAPPEL_DELIVERY_ENABLED", "true"),
        ("RAPPEL_DELIVERY_POLL_INTERVAL_SECONDS", "1"),
        ("RAPPEL_SMTP_TRANSPORT", "smtp"),
        ("RAPPEL_SMTP_HOST", "127.0.0.1"),
        ("RAPPEL_SMTP_PORT", &smtp_port),
        ("RAPPEL_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true"),
        ("RAPPEL_STORAGE_MAX_FILE_MB", "25"),
        ("RAPPEL_PUBLIC_BASE_URL", "https://rappel.example"),
    ];
    settings.extend_from_slice(storage_env);
    let server = ServerProcess::start(&app.db.url, &settings);
    let base = server.base_url.clone();
    let admin = world.admin_a_token.clone();
    let contact = world.contact_a_token.clone();
    let request = world.firm_a.request.clone();

    let receiver = webhooks::start_without_secret().await;
    let created = post_graphql(
        &base,
        Some(&admin),
        "mutation($url: String!) { createWebhookEndpoint(input: { url: $url, events: [INFORMATION_REQUEST_ANSWERED] }) { secret } }",
        json!({ "url": receiver.url }),
    )
    .await;
    let secret = created["data"]["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("an endpoint: {created}"));
    receiver.set_secret(secret);

    // Refusals first: each keeps no row and no object.
    let (status, refused) = upload(
        &base,
        &contact,
        &request,
        None,
        &[("setup.pdf", executable())],
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["field"], "files",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("setup.pdf"),
        "{refused}"
    );
    let many: Vec<(&str, Vec<u8>)> = (0..21).map(|_| ("page.pdf", pdf(100))).collect();
    let (_, refused) = upload(&base, &contact, &request, None, &many).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 20 files"),
        "{refused}"
    );
    let huge = multipart_body(&request, None, &[("big.pdf", pdf(30 * 1024 * 1024))]);
    let (status, refused) = upload(
        &base,
        &contact,
        &request,
        None,
        &[("big.pdf", pdf(30 * 1024 * 1024))],
    )
    .await;
    assert_eq!(status, 413, "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than 25 MB"),
        "{refused}"
    );
    let chunked = raw_post(&base, &contact, &huge, None).await;
    assert!(
        chunked.starts_with("HTTP/1.1 413"),
        "a chunked 30 MB upload is refused: {chunked}"
    );
    let lying = raw_post(&base, &contact, &huge, Some(2000)).await;
    assert!(
        lying.starts_with("HTTP/1.1 400"),
        "a body shorter than its parts is refused: {lying}"
    );
    assert_eq!(objects.count().await, 0, "no object is left after refusals");
    assert_eq!(file_rows(app).await, 0, "no row is left after refusals");

    // A PDF and a JPEG with a message.
    let (pdf_bytes, jpeg_bytes) = (pdf(300 * 1024), jpeg(50 * 1024));
    let (status, answered) = upload(
        &base,
        &contact,
        &request,
        Some("Voici les relevés"),
        &[
            ("relevé mars.pdf", pdf_bytes.clone()),
            ("../ticket.jpg", jpeg_bytes.clone()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(
        answered["data"]["answerRequest"]["status"], "ANSWERED",
        "{answered}"
    );
    let answers = answered["data"]["answerRequest"]["answers"]["nodes"]
        .as_array()
        .expect("answers");
    let files = answers.last().expect("an answer")["files"]
        .as_array()
        .expect("files")
        .clone();
    assert_eq!(files.len(), 2, "{answered}");
    assert_eq!(files[0]["name"], "relevé mars.pdf");
    assert_eq!(files[0]["mediaType"], "application/pdf");
    assert_eq!(files[0]["sha256"], sha256(&pdf_bytes));
    assert_eq!(files[1]["name"], "ticket.jpg");
    assert_eq!(files[1]["mediaType"], "image/jpeg");
    assert_eq!(files[1]["size"], jpeg_bytes.len());
    assert_eq!(objects.count().await, 2);

    // The firm downloads both, from its own view's URLs and by id.
    let firm_view = post_graphql(
        &base,
        Some(&admin),
        "query($r: ID!) { firm { files(requestId: $r) { totalCount nodes { id name sha256 downloadUrl } } \
         informationRequest(id: $r) { answers { nodes { files { id downloadUrl } } } } } }",
        json!({ "r": request }),
    )
    .await;
    let listed = firm_view["data"]["firm"]["files"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{firm_view}"))
        .clone();
    assert_eq!(
        firm_view["data"]["firm"]["files"]["totalCount"], 2,
        "{firm_view}"
    );
    for (file, bytes) in [(&files[0], &pdf_bytes), (&files[1], &jpeg_bytes)] {
        let listed = listed
            .iter()
            .find(|node| node["id"] == file["id"])
            .expect("listed");
        let shown = listed["downloadUrl"].as_str().expect("url");
        // The URL users reach (public_base_url), here served on the test's port.
        let path = shown
            .strip_prefix("https://rappel.example")
            .unwrap_or_else(|| panic!("an absolute URL at public_base_url: {shown}"));
        let url = format!("{base}{path}");
        let (status, headers, body) = download(&url, &admin).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(sha256(&body), sha256(bytes));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "private, no-store");
        let disposition = headers["content-disposition"].to_str().expect("ascii");
        assert!(
            disposition.starts_with("attachment; filename="),
            "{disposition}"
        );
        let id = crate::support::app::row_id(file["id"].as_str().expect("id"));
        let (status, _, body) = download(&format!("{base}/files/{id}"), &admin).await;
        assert_eq!((status, sha256(&body)), (200, sha256(bytes)));
        // The contact downloads its own file too.
        let (status, _, _) = download(&format!("{base}/files/{id}"), &contact).await;
        assert_eq!(status, 200);
    }
    assert!(
        listed[0]["downloadUrl"]
            .as_str()
            .unwrap_or_default()
            .contains("/files/"),
        "{firm_view}"
    );
    let pdf_id = crate::support::app::row_id(files[0]["id"].as_str().expect("id"));
    assert!(
        download(&format!("{base}/files/{pdf_id}"), "").await.0 == 401,
        "no token, no file"
    );
    // Another firm, another client of the firm: 404, as a missing file.
    let other_firm = post_graphql(
        &base,
        None,
        "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token } }",
        json!({ "e": "admin@b.example.fr", "p": PASSWORD }),
    )
    .await;
    let other_firm = other_firm["data"]["login"]["token"]
        .as_str()
        .expect("token");
    assert_eq!(
        download(&format!("{base}/files/{pdf_id}"), other_firm)
            .await
            .0,
        404
    );
    assert_eq!(
        download(&format!("{base}/files/999999"), &admin).await.0,
        404
    );
    let other_firm_view = post_graphql(
        &base,
        Some(other_firm),
        "{ firm { files { totalCount } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        other_firm_view["data"]["firm"]["files"]["totalCount"], 0,
        "{other_firm_view}"
    );

    // The firm's admin is emailed: client, request, message and files (links, no bodies).
    let mails = sink.wait_for(1, Duration::from_secs(60)).await;
    let notice = mails
        .iter()
        .find(|mail| {
            mail.rcpt_to
                .iter()
                .any(|to| to.contains("admin@a.example.fr"))
        })
        .unwrap_or_else(|| panic!("the admin's notice arrives: {} mails", mails.len()));
    let parsed = crate::support::smtp::parse(&notice.data);
    let text = parsed.text_body.clone().expect("a text part");
    assert!(text.contains("Voici les relevés"), "{text}");
    assert!(
        text.contains("relevé mars.pdf") && text.contains("ticket.jpg"),
        "{text}"
    );
    assert!(text.contains(&format!("/files/{pdf_id}")), "{text}");
    assert!(
        notice.data.len() < 200 * 1024,
        "no attachment body in the notice"
    );
    let subject = parsed.subject.clone().unwrap_or_default();
    assert!(
        subject.contains("a répondu") || subject.contains("answered"),
        "{subject}"
    );

    // The webhook carries the files' metadata, never their bytes.
    let hooks = receiver.wait_for(1, Duration::from_secs(60)).await;
    let hook = hooks.first().expect("a webhook");
    assert!(hook.signature_valid);
    let body: Value = serde_json::from_str(&hook.body).expect("JSON");
    assert_eq!(body["type"], "information_request.answered");
    let hook_files = body["data"]["answer"]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(hook_files.len(), 2);
    assert_eq!(hook_files[0]["sha256"], sha256(&pdf_bytes));
    assert!(hook.body.len() < 4096, "metadata only");
    sink.stop().await;
}

backend_test!(
    async fn a_contact_deposits_files_the_firm_downloads_them_and_refusals_keep_nothing(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let folder = tempfile::tempdir().expect("folder");
        let files = folder.path().join("files");
        let url = files.display().to_string();
        documents_round_trip(
            &app,
            &[("RAPPEL_STORAGE_URL", &url)],
            Objects::Folder(files),
        )
        .await;
    }
);

/// A moto S3 server on a free loopback port, killed when dropped.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto_server starts (pip install 'moto[server]'): the S3 test never skips");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..120 {
        if reqwest::get(&moto.endpoint).await.is_ok() {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "moto_server did not answer on {} within 30 s",
        moto.endpoint
    );
}

backend_test!(
    async fn deposits_go_to_an_s3_compatible_store_and_come_back_unchanged(db: TestDb) {
        let app = TestApp::new(db);
        let moto = start_moto().await;
        let bucket = "rappel-docs";
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", moto.endpoint))
            .send()
            .await
            .expect("bucket created");
        assert!(created.status().is_success(), "{}", created.status());
        documents_round_trip(
            &app,
            &[
                ("RAPPEL_STORAGE_URL", "s3://rappel-docs/firm-files"),
                ("RAPPEL_STORAGE_ENDPOINT", &moto.endpoint),
                ("RAPPEL_STORAGE_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
            Objects::S3 {
                endpoint: moto.endpoint.clone(),
                bucket: bucket.into(),
            },
        )
        .await;
    }
);

/// Runs `rappel sweep files` as a process against `database_url` and the store `storage_env`
/// names, its clock moved `days_ahead` days on by libfaketime (`faketime`, installed by
/// `.ci/run`) so that the objects just written are that old; returns what it printed.
pub fn sweep_files_cli(
    database_url: &str,
    storage_env: &[(&str, &str)],
    days_ahead: u32,
    dry_run: bool,
) -> String {
    let binary = env!("CARGO_BIN_EXE_rappel");
    let mut command = if days_ahead == 0 {
        std::process::Command::new(binary)
    } else {
        let mut command = std::process::Command::new("faketime");
        command
            .args(["-f", &format!("+{days_ahead}d"), binary])
            // The process's timers keep the real monotonic clock.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        command
    };
    command.args(["sweep", "files"]);
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAPPEL_DATABASE_URL", database_url)
        .envs(storage_env.iter().copied())
        .output()
        .expect("rappel sweep files runs (faketime: apt-get install faketime)");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "rappel sweep files failed: {printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

/// Every key of a moto bucket, sorted.
async fn bucket_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let listing = reqwest::get(format!("{endpoint}/{bucket}?list-type=2"))
        .await
        .expect("list")
        .text()
        .await
        .expect("listing");
    let mut keys: Vec<String> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split("</Key>").next())
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

backend_test!(
    async fn the_file_sweep_deletes_old_objects_no_row_names_from_an_s3_store_and_nothing_else(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let moto = start_moto().await;
        let bucket = "rappel-sweep";
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", moto.endpoint))
            .send()
            .await
            .expect("bucket created");
        assert!(created.status().is_success(), "{}", created.status());
        let storage_env = [
            ("RAPPEL_STORAGE_URL", "s3://rappel-sweep/firm-files"),
            ("RAPPEL_STORAGE_ENDPOINT", moto.endpoint.as_str()),
            ("RAPPEL_STORAGE_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ];
        let mut server_env = storage_env.to_vec();
        server_env.push(("RAPPEL_PUBLIC_BASE_URL", "https://rappel.example"));
        let server = ServerProcess::start(&app.db.url, &server_env);
        let deposited = pdf(50_000);
        let (status, answered) = upload(
            &server.base_url,
            &world.contact_a_token,
            &world.firm_a.request,
            Some("Le relevé"),
            &[("releve.pdf", deposited.clone())],
        )
        .await;
        assert_eq!(status, 200, "{answered}");
        assert!(answered.get("errors").is_none(), "{answered}");
        let recorded = bucket_keys(&moto.endpoint, bucket).await;
        assert_eq!(recorded.len(), 1, "the deposited file: {recorded:?}");

        // What a crash leaves (a file staged, its answer never committed; a held reply's copy
        // whose deletion failed), beside objects Rappel never wrote.
        let orphans = [
            "firm-files/staging/1/1/crashed-upload",
            "firm-files/inbound/1/lost-copy.eml",
        ];
        let strangers = ["firm-files/exports/keep.csv", "other-app/staging/1/keep"];
        for key in orphans.iter().chain(&strangers) {
            let put = reqwest::Client::new()
                .put(format!("{}/{bucket}/{key}", moto.endpoint))
                .body(pdf(1_000))
                .send()
                .await
                .expect("object written");
            assert!(put.status().is_success(), "{key}: {}", put.status());
        }
        let before = bucket_keys(&moto.endpoint, bucket).await;
        assert_eq!(before.len(), 5);

        // Today they are younger than sweep_after_hours (24): nothing goes.
        let printed = sweep_files_cli(&app.db.url, &storage_env, 0, false);
        assert!(
            printed.contains("3 object(s) examined, 0 named by no answer"),
            "{printed}"
        );
        assert_eq!(bucket_keys(&moto.endpoint, bucket).await, before);

        // Two days on, a dry run names the two orphans and deletes nothing.
        let printed = sweep_files_cli(&app.db.url, &storage_env, 2, true);
        assert!(printed.contains("(dry run)"), "{printed}");
        assert!(
            printed.contains("2 named by no answer or held reply"),
            "{printed}"
        );
        assert!(
            printed.contains("  staging/1/1/crashed-upload\n"),
            "{printed}"
        );
        assert!(printed.contains("  inbound/1/lost-copy.eml\n"), "{printed}");
        assert!(printed.contains(", 0 deleted"), "{printed}");
        assert_eq!(bucket_keys(&moto.endpoint, bucket).await, before);

        // For real: the orphans go; the answer's file and the objects outside Rappel's
        // folders stay.
        let printed = sweep_files_cli(&app.db.url, &storage_env, 2, false);
        assert!(printed.contains(", 2 deleted, 0 failed"), "{printed}");
        let mut left: Vec<String> = recorded
            .iter()
            .chain(&strangers.map(String::from))
            .cloned()
            .collect();
        left.sort();
        assert_eq!(bucket_keys(&moto.endpoint, bucket).await, left);
        let printed = sweep_files_cli(&app.db.url, &storage_env, 2, false);
        assert!(
            printed.contains("0 named by no answer"),
            "a second sweep finds nothing: {printed}"
        );

        // The deposited file still downloads, byte for byte.
        let files = post_graphql(
            &server.base_url,
            Some(&world.admin_a_token),
            "query($r: ID!) { firm { files(requestId: $r) { nodes { downloadUrl } } } }",
            json!({ "r": world.firm_a.request }),
        )
        .await;
        let shown = files["data"]["firm"]["files"]["nodes"][0]["downloadUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("a file: {files}"));
        let path = shown
            .strip_prefix("https://rappel.example")
            .expect("public URL");
        let (status, _, body) =
            download(&format!("{}{path}", server.base_url), &world.admin_a_token).await;
        assert_eq!(status, 200);
        assert_eq!(sha256(&body), sha256(&deposited));
    }
);
