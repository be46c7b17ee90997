//! A real IMAP server for tests: Debian's Dovecot (`/usr/sbin/dovecot`, package
//! `dovecot-imapd`) started with a throw-away configuration in a temporary folder: IMAPS on a
//! free loopback port with a certificate signed by a test CA made with the `openssl` CLI,
//! passwd-file sign-in, maildir storage. Dovecot refuses to run its login and mail processes
//! as root, so under root they run as `nobody` (which then owns the mail folder). Stopped (and
//! its processes gone) when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const DOVECOT: &str = "/usr/sbin/dovecot";
pub const USER: &str = "rappel";
pub const PASSWORD: &str = "imap-secret";

/// A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `dir`.
pub struct TestCertificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes a CA and a server certificate signed by it (rustls refuses a CA certificate used
/// as the server's own).
pub fn certificates(dir: &Path) -> TestCertificates {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Rappel test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions written");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    TestCertificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A running Dovecot.
pub struct Dovecot {
    dir: TempDir,
    config: PathBuf,
    pub port: u16,
    pub ca_file: PathBuf,
}

impl Dovecot {
    /// Starts Dovecot and waits until it accepts connections. Fails (never skips) when it is
    /// not installed: `.ci/run` installs `dovecot-imapd`.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// [`Dovecot::start`] with `extra` lines appended to its configuration.
    pub fn start_with(extra: &str) -> Self {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: apt-get install dovecot-imapd"
        );
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        // The unprivileged processes must reach the folder.
        set_mode(root, 0o755);
        let certs = certificates(root);
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(root.join(sub)).expect("folder");
        }
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n"))
            .expect("passwd written");
        set_mode(&root.join("passwd"), 0o644);
        set_mode(&certs.key, 0o644);
        let is_root = current_uid() == 0;
        let (uid, user) = if is_root {
            (65534, "nobody".to_string())
        } else {
            (current_uid(), std::env::var("USER").unwrap_or_default())
        };
        if is_root {
            let status = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(root.join("home"))
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the mail folder");
        }
        let port = free_port();
        let d = root.display();
        let config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\nssl = required\n\
             ssl_cert = <{cert}\nssl_key = <{key}\n\
             disable_plaintext_auth = yes\nauth_mechanisms = plain\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={uid} home={d}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n\
             default_internal_user = {user}\ndefault_login_user = {user}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0600\n  }}\n  unix_listener stats-writer {{\n    mode = 0600\n  }}\n}}\n",
            cert = certs.cert.display(),
            key = certs.key.display(),
        ) + extra;
        let config_path = root.join("dovecot.conf");
        std::fs::write(&config_path, config).expect("config written");
        let status = Command::new(DOVECOT)
            .arg("-c")
            .arg(&config_path)
            .status()
            .expect("dovecot starts");
        assert!(status.success(), "dovecot started");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "dovecot listens on {port}: {}",
                std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            config: config_path,
            port,
            ca_file: certs.ca,
            dir,
        }
    }

    /// Rappel's `[inbound.imap]` settings for this server.
    pub fn settings(&self) -> rappel::config::InboundImapConfig {
        rappel::config::InboundImapConfig {
            enabled: true,
            host: "127.0.0.1".into(),
            port: self.port,
            ca_file: self.ca_file.display().to_string(),
            user: USER.into(),
            password: PASSWORD.into(),
            folder: "INBOX".into(),
            processed_folder: "Rappel-processed".into(),
            poll_seconds: 1,
        }
    }

    /// Puts messages in a folder with IMAP APPEND (as a mail server delivering them).
    pub async fn append(&self, folder: &str, messages: &[Vec<u8>]) {
        let mut session = rappel::inbound::imap::connect(&self.settings())
            .await
            .expect("test IMAP session");
        let _ = session.create(folder).await;
        for message in messages {
            session
                .append(folder, None, None, message)
                .await
                .expect("message appended");
        }
        let _ = session.logout().await;
    }

    /// How many messages a folder holds.
    pub async fn count(&self, folder: &str) -> u32 {
        let mut session = rappel::inbound::imap::connect(&self.settings())
            .await
            .expect("test IMAP session");
        let mailbox = session.select(folder).await.expect("folder selected");
        let _ = session.logout().await;
        mailbox.exists
    }

    /// How many messages a folder holds, or None while it does not exist.
    pub async fn count_if_exists(&self, folder: &str) -> Option<u32> {
        let mut session = rappel::inbound::imap::connect(&self.settings())
            .await
            .ok()?;
        let mailbox = session.examine(folder).await.ok();
        let _ = session.logout().await;
        mailbox.map(|mailbox| mailbox.exists)
    }

    pub fn folder(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new(DOVECOT)
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .status();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    // The owner of a file this process just made is this process's user.
    let probe = tempfile::NamedTempFile::new().expect("probe file");
    probe.as_file().metadata().expect("metadata").uid()
}
