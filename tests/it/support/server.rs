//! The `rappel` binary started as a real process, on a real port, with its own settings.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `rappel serve`; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub base_url: String,
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `rappel serve` with `database_url` on a free loopback port, plus `extra_env`,
    /// and waits until it prints its address.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rappel"));
        command
            .arg("serve")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAPPEL_DATABASE_URL", database_url)
            .env("RAPPEL_LISTEN", "127.0.0.1:0")
            .env("RAPPEL_DEMO", "false")
            .env("RAPPEL_SCHEDULER_ENABLED", "false")
            .env("RAPPEL_DELIVERY_ENABLED", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("rappel starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = printed.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            while let Some(Ok(line)) = lines.next() {
                println!("[rappel] {line}");
                if let Ok(mut collected) = collected.lock() {
                    collected.push(line.clone());
                }
                if !sent {
                    if let Some(rest) = line.strip_prefix("Rappel listening on ") {
                        let base = rest.trim_end_matches("/graphql").to_string();
                        let _ = sender.send(base);
                        sent = true;
                    }
                }
            }
        });
        let base_url = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("rappel prints its address within a minute");
        Self {
            child,
            base_url,
            printed,
        }
    }

    /// Every line the server printed on stdout so far.
    pub fn printed_lines(&self) -> Vec<String> {
        self.printed
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("rappel did not stop within 10 s of SIGTERM");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts a GraphQL query over HTTP and returns the JSON answer.
pub async fn post_graphql(
    base_url: &str,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> serde_json::Value {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{base_url}/graphql"))
        .json(&serde_json::json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON answer")
}
