//! Settings: one `Config`, loaded once at start from `config/default.toml` (or `--config FILE`,
//! or the file named by `RAPPEL_CONFIG`) and `RAPPEL_*` environment variables, checked, then
//! passed down. Never read globally. A file refuses unknown keys; the environment is read only
//! for known keys (orchestrators inject variables such as `RAPPEL_PORT=tcp://...` for a service
//! named `rappel`), and the others are reported so that the caller can warn about them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Sections of the file; `RAPPEL_<SECTION>_<KEY>` sets `<key>` in `[section]`.
const SECTIONS: [&str; 13] = [
    "http",
    "portal",
    "database",
    "graphql",
    "auth",
    "scheduler",
    "delivery",
    "smtp",
    "webhooks",
    "log",
    "metrics",
    "storage",
    "inbound",
];

/// The file read when no `--config` is given, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub public_base_url: String,
    pub demo: bool,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub graphql: GraphqlConfig,
    pub auth: AuthConfig,
    pub scheduler: SchedulerConfig,
    pub delivery: DeliveryConfig,
    pub smtp: SmtpConfig,
    pub webhooks: WebhooksConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub storage: StorageConfig,
    pub portal: PortalConfig,
    pub inbound: InboundConfig,
}

/// `[inbound]`: clients answer by replying to the email (off by default). Request and reminder
/// emails then carry `Reply-To: <local>+<token>@<domain>` of `reply_to`; replies arrive by IMAP
/// (`[inbound.imap]`) and/or by SMTP (`[inbound.smtp]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    pub enabled: bool,
    /// The reply address without its token, `reponses@reply.cabinet.fr`.
    pub reply_to: String,
    /// Largest email accepted, in MiB (the SMTP listener announces it as SIZE).
    pub max_message_mb: u64,
    /// Trust `Authentication-Results` headers written by this server (the MTA in front of
    /// the mailbox); empty: trust none.
    pub authserv_id: String,
    pub imap: InboundImapConfig,
    pub smtp: InboundSmtpConfig,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            reply_to: String::new(),
            max_message_mb: 30,
            authserv_id: String::new(),
            imap: InboundImapConfig::default(),
            smtp: InboundSmtpConfig::default(),
        }
    }
}

impl InboundConfig {
    /// The local part and domain of `reply_to`, when inbound is on and it is an address.
    pub fn reply_address(&self) -> Option<(&str, &str)> {
        if !self.enabled {
            return None;
        }
        self.reply_to
            .split_once('@')
            .filter(|(local, domain)| !local.is_empty() && !domain.is_empty())
    }

    /// The size limit in bytes.
    pub fn max_message_bytes(&self) -> u64 {
        self.max_message_mb.saturating_mul(1024 * 1024)
    }
}

/// `[inbound.imap]`: the mailbox Rappel fetches replies from, over TLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundImapConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// A PEM file of extra trusted CA certificates (a private mail server); empty: the
    /// public roots only.
    pub ca_file: String,
    pub user: String,
    pub password: String,
    pub folder: String,
    /// Where processed messages are moved (created when missing).
    pub processed_folder: String,
    /// Seconds between polls when the server has no IDLE (and the longest IDLE wait).
    pub poll_seconds: u64,
}

impl Default for InboundImapConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: String::new(),
            port: 993,
            ca_file: String::new(),
            user: String::new(),
            password: String::new(),
            folder: "INBOX".into(),
            processed_folder: "Rappel-processed".into(),
            poll_seconds: 60,
        }
    }
}

/// `[inbound.smtp]`: an SMTP listener for an MX or a forwarding rule, and its caps (past
/// each, the client is told why with 421, 452 or 500).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSmtpConfig {
    pub enabled: bool,
    pub listen: String,
    /// PEM certificate chain and key offered with STARTTLS; empty: no STARTTLS.
    pub tls_cert: String,
    pub tls_key: String,
    /// Connections open at once, in total (421 beyond).
    pub max_connections: usize,
    /// Connections open at once from one IP address (421 beyond).
    pub max_connections_per_ip: usize,
    /// Seconds to wait for a command, a DATA line or the TLS handshake (421, then closed).
    pub command_timeout_seconds: u64,
    /// Seconds one message's DATA may take from 354 to its final dot (421, then closed).
    pub data_timeout_seconds: u64,
    /// Recipients of one message (452 beyond).
    pub max_recipients: usize,
    /// Commands on one connection (421, then closed).
    pub max_commands: u32,
    /// Longest command line, in bytes with its line end (500, then closed).
    pub max_line_bytes: u64,
}

impl Default for InboundSmtpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "0.0.0.0:2525".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            max_connections: 100,
            max_connections_per_ip: 10,
            command_timeout_seconds: 300,
            data_timeout_seconds: 600,
            max_recipients: 50,
            max_commands: 1000,
            max_line_bytes: 2048,
        }
    }
}

/// `[storage]`: where uploaded documents go and what is accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// A folder (`data/files`, or `file:///abs/path`), or `s3://bucket/prefix`.
    pub url: String,
    /// The S3-compatible server's address (empty: AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: String,
    /// The S3 region (empty: `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1).
    pub region: String,
    /// Largest accepted file, in mebibytes.
    pub max_file_mb: u64,
    /// Most files one answer may carry.
    pub max_files_per_answer: usize,
    /// Media types accepted, checked against the bytes; `type/*` accepts a whole family.
    pub allowed_types: Vec<String>,
    /// Age in hours past which an object no row names is deleted by the file sweep.
    pub sweep_after_hours: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: "data/files".into(),
            endpoint: String::new(),
            region: String::new(),
            max_file_mb: 25,
            max_files_per_answer: 20,
            allowed_types: [
                "application/pdf",
                "image/*",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.spreadsheet",
                "text/csv",
                "text/plain",
                "application/zip",
            ]
            .map(String::from)
            .to_vec(),
            sweep_after_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: u32,
    pub busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlConfig {
    pub graphiql: bool,
    pub introspection: bool,
    pub suggestions: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub max_document_bytes: usize,
    pub max_tokens: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    /// Rows in a page of a list when the caller gives neither `first` nor `last`.
    pub default_page_size: usize,
    /// Most rows a caller may ask for in one page (`first` or `last`).
    pub max_page_size: usize,
    /// Most documents kept for automatic persisted queries (least recently used go first).
    pub persisted_queries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub header_read_timeout_seconds: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub ws_init_timeout_seconds: u64,
    /// Origins (`https://app.example`) whose browser pages may call the API (CORS); `"*"` for
    /// any; empty for none.
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_hours: u32,
    pub contact_token_days: u32,
    pub sign_in_attempts_per_account: u32,
    pub sign_in_attempts_per_ip: u32,
    pub sign_in_window_seconds: u64,
    pub max_concurrent_password_checks: usize,
    pub caller_cache_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub enabled: bool,
    pub generation_cron: String,
    pub run_at_start: bool,
    pub batch_size: u32,
    pub occurrences_per_transaction: u32,
    pub max_line_quantity: u32,
    pub max_service_items: u32,
    pub max_mission_lines: u32,
    pub max_occurrences_at_once: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub enabled: bool,
    pub max_attempts: u32,
    pub initial_backoff_seconds: u32,
    pub max_backoff_seconds: u32,
    pub lease_seconds: u32,
    pub concurrency: u32,
    pub poll_interval_seconds: u32,
    pub reminder_interval_minutes: u32,
    /// How often the staff's daily digest pass runs (the firm's day), in minutes.
    pub digest_interval_minutes: u32,
    pub sending_hour: u32,
    pub reminder_days_before: u32,
    pub reminder_on_due_date: bool,
    pub reminder_every_days: u32,
    pub reminder_max_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub transport: String,
    pub mail_dir: PathBuf,
    pub host: String,
    pub port: u16,
    pub tls: String,
    /// PEM file of certificate authorities trusted besides the public roots (a private relay's
    /// CA), for `starttls` and `tls`; empty: the public roots only.
    pub ca_file: String,
    pub username: String,
    pub password: String,
    pub from_address: String,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub allow_private_addresses: bool,
    pub timeout_seconds: u64,
    pub disable_after_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: String,
    pub color: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub listen: String,
    pub bearer_token: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            color: "auto".into(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: String::new(),
            bearer_token: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            demo: true,
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            graphql: GraphqlConfig::default(),
            auth: AuthConfig::default(),
            scheduler: SchedulerConfig::default(),
            delivery: DeliveryConfig::default(),
            smtp: SmtpConfig::default(),
            webhooks: WebhooksConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            storage: StorageConfig::default(),
            portal: PortalConfig::default(),
            inbound: InboundConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "data/rappel.db".into(),
            pool_size: 8,
            busy_timeout_ms: 10_000,
        }
    }
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self {
            graphiql: true,
            introspection: true,
            suggestions: true,
            max_depth: 15,
            max_complexity: 5000,
            max_batch: 10,
            max_body_bytes: 1024 * 1024,
            max_document_bytes: 32 * 1024,
            max_tokens: 5000,
            max_fields: 2000,
            max_aliases: 30,
            max_root_fields: 20,
            default_page_size: 50,
            max_page_size: 100,
            persisted_queries: 1000,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 15,
            max_connections: 512,
            max_connections_per_ip: 64,
            ws_init_timeout_seconds: 10,
            cors_origins: Vec::new(),
        }
    }
}

/// The client portal (`/portal`): how long an emailed link and a portal session last.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Lifetime of an emailed portal link (reusable until then), in days.
    pub link_days: u32,
    /// Lifetime of a portal session (its cookie), in hours.
    pub session_hours: u32,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            link_days: 30,
            session_hours: 12,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_hours: 720,
            contact_token_days: 365,
            sign_in_attempts_per_account: 10,
            sign_in_attempts_per_ip: 50,
            sign_in_window_seconds: 300,
            max_concurrent_password_checks: 2,
            caller_cache_seconds: 5,
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            generation_cron: "0 0 * * * *".into(),
            run_at_start: true,
            batch_size: 500,
            occurrences_per_transaction: 200,
            max_line_quantity: 500,
            max_service_items: 100,
            max_mission_lines: 100,
            max_occurrences_at_once: 5_000,
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 8,
            initial_backoff_seconds: 30,
            max_backoff_seconds: 6 * 3600,
            lease_seconds: 120,
            concurrency: 16,
            poll_interval_seconds: 5,
            reminder_interval_minutes: 60,
            digest_interval_minutes: 15,
            sending_hour: 8,
            reminder_days_before: 3,
            reminder_on_due_date: true,
            reminder_every_days: 7,
            reminder_max_count: 3,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            transport: "files".into(),
            mail_dir: PathBuf::from("data/mail"),
            host: "127.0.0.1".into(),
            port: 25,
            tls: "none".into(),
            ca_file: String::new(),
            username: String::new(),
            password: String::new(),
            from_address: "rappel@localhost".into(),
            pool_size: 4,
        }
    }
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            timeout_seconds: 15,
            disable_after_days: 5,
        }
    }
}

/// A setting with a value Rappel cannot use. The message names both.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(String),
    #[error("invalid value for setting `{setting}`: {value:?} ({reason})")]
    Invalid {
        setting: &'static str,
        value: String,
        reason: String,
    },
}

impl Config {
    /// Loads the defaults, then `file` (when it exists, or always when `required`), then the
    /// `RAPPEL_*` environment, and checks every value.
    pub fn load(file: &Path, required: bool) -> Result<Self, ConfigError> {
        Self::load_reporting(file, required).map(|(config, _)| config)
    }

    /// [`Config::load`], also telling which `RAPPEL_*` variables were ignored and where each
    /// setting came from (for `rappel config check` and the start-up warnings).
    pub fn load_reporting(file: &Path, required: bool) -> Result<(Self, LoadReport), ConfigError> {
        if required && !file.exists() {
            return Err(ConfigError::Load(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(environment());
        let config: Config = figment
            .extract()
            .map_err(|error| ConfigError::Load(describe_figment_error(error)))?;
        config.check()?;
        config.validate()?;
        let ignored_variables = std::env::vars_os()
            .filter_map(|(key, _)| key.into_string().ok())
            .filter(|key| is_rappel_variable(key) && setting_of_variable(key).is_none())
            .collect();
        let sources = known_settings()
            .into_iter()
            .map(|setting| {
                let source = figment
                    .find_value(&setting)
                    .ok()
                    .and_then(|value| figment.get_metadata(value.tag()).cloned())
                    .map(|metadata| describe_source(&metadata))
                    .unwrap_or_else(|| "built-in default".into());
                (setting, source)
            })
            .collect();
        Ok((
            config,
            LoadReport {
                ignored_variables,
                sources,
            },
        ))
    }

    /// Every setting as `(dotted name, value as written in TOML, source)`, sorted, with
    /// secrets masked: what `rappel config check` prints.
    pub fn describe(&self, report: &LoadReport) -> Vec<(String, String, String)> {
        let values = flatten(&serde_json::to_value(self).unwrap_or_default());
        values
            .into_iter()
            .map(|(setting, value)| {
                let shown = mask_secret(&setting, &value);
                let source = report
                    .sources
                    .iter()
                    .find(|(name, _)| *name == setting)
                    .map(|(_, source)| source.clone())
                    .unwrap_or_else(|| "built-in default".into());
                (setting, shown, source)
            })
            .collect()
    }

    /// The listen address, already checked by [`Config::check`].
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Invalid {
            setting: "listen",
            value: self.listen.clone(),
            reason: "expected an address such as 127.0.0.1:8080".into(),
        })
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        let invalid = |setting: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            setting,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if !(self.public_base_url.starts_with("http://")
            || self.public_base_url.starts_with("https://"))
        {
            return Err(invalid(
                "public_base_url",
                &self.public_base_url,
                "expected an http:// or https:// address",
            ));
        }
        crate::db::DatabaseUrl::parse(&self.database.url)
            .map_err(|reason| invalid("database.url", &self.database.url, &reason))?;
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "0", "at least 1"));
        }
        for (setting, value) in [
            (
                "http.header_read_timeout_seconds",
                self.http.header_read_timeout_seconds,
            ),
            (
                "http.ws_init_timeout_seconds",
                self.http.ws_init_timeout_seconds,
            ),
            ("http.max_connections", self.http.max_connections as u64),
            (
                "http.max_connections_per_ip",
                self.http.max_connections_per_ip as u64,
            ),
            (
                "auth.sign_in_attempts_per_account",
                u64::from(self.auth.sign_in_attempts_per_account),
            ),
            (
                "auth.sign_in_attempts_per_ip",
                u64::from(self.auth.sign_in_attempts_per_ip),
            ),
            (
                "auth.sign_in_window_seconds",
                self.auth.sign_in_window_seconds,
            ),
            (
                "auth.max_concurrent_password_checks",
                self.auth.max_concurrent_password_checks as u64,
            ),
        ] {
            if value == 0 {
                return Err(invalid(setting, "0", "at least 1"));
            }
        }
        if self.scheduler.batch_size == 0 {
            return Err(invalid("scheduler.batch_size", "0", "at least 1"));
        }
        for (setting, value) in [
            (
                "scheduler.occurrences_per_transaction",
                self.scheduler.occurrences_per_transaction,
            ),
            (
                "scheduler.max_line_quantity",
                self.scheduler.max_line_quantity,
            ),
            (
                "scheduler.max_service_items",
                self.scheduler.max_service_items,
            ),
            (
                "scheduler.max_mission_lines",
                self.scheduler.max_mission_lines,
            ),
            (
                "scheduler.max_occurrences_at_once",
                self.scheduler.max_occurrences_at_once,
            ),
        ] {
            if value == 0 {
                return Err(invalid(setting, "0", "at least 1"));
            }
        }
        if self.scheduler.generation_cron.split_whitespace().count() != 6 {
            return Err(invalid(
                "scheduler.generation_cron",
                &self.scheduler.generation_cron,
                "expected six fields: sec min hour day month weekday",
            ));
        }
        if self.delivery.sending_hour > 23 {
            return Err(invalid(
                "delivery.sending_hour",
                &self.delivery.sending_hour.to_string(),
                "an hour from 0 to 23",
            ));
        }
        if self.delivery.max_attempts == 0 {
            return Err(invalid("delivery.max_attempts", "0", "at least 1"));
        }
        for (setting, value) in [
            (
                "delivery.initial_backoff_seconds",
                self.delivery.initial_backoff_seconds,
            ),
            ("delivery.lease_seconds", self.delivery.lease_seconds),
            ("delivery.concurrency", self.delivery.concurrency),
            (
                "delivery.poll_interval_seconds",
                self.delivery.poll_interval_seconds,
            ),
            (
                "delivery.reminder_interval_minutes",
                self.delivery.reminder_interval_minutes,
            ),
            (
                "delivery.digest_interval_minutes",
                self.delivery.digest_interval_minutes,
            ),
            (
                "webhooks.disable_after_days",
                self.webhooks.disable_after_days,
            ),
        ] {
            if value == 0 {
                return Err(invalid(setting, "0", "at least 1"));
            }
        }
        if self.delivery.max_backoff_seconds < self.delivery.initial_backoff_seconds {
            return Err(invalid(
                "delivery.max_backoff_seconds",
                &self.delivery.max_backoff_seconds.to_string(),
                "at least delivery.initial_backoff_seconds",
            ));
        }
        if self.webhooks.timeout_seconds == 0 {
            return Err(invalid("webhooks.timeout_seconds", "0", "at least 1"));
        }
        if !matches!(self.smtp.transport.as_str(), "files" | "smtp") {
            return Err(invalid(
                "smtp.transport",
                &self.smtp.transport,
                "expected \"files\" or \"smtp\"",
            ));
        }
        if !matches!(self.smtp.tls.as_str(), "none" | "starttls" | "tls") {
            return Err(invalid(
                "smtp.tls",
                &self.smtp.tls,
                "expected \"none\", \"starttls\" or \"tls\"",
            ));
        }
        if !self.smtp.from_address.contains('@') {
            return Err(invalid(
                "smtp.from_address",
                &self.smtp.from_address,
                "expected an email address",
            ));
        }
        self.check_inbound()
    }

    fn check_inbound(&self) -> Result<(), ConfigError> {
        let inbound = &self.inbound;
        let invalid = |setting: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            setting,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if !inbound.enabled {
            return Ok(());
        }
        let Some((local, _)) = inbound.reply_address() else {
            return Err(invalid(
                "inbound.reply_to",
                &inbound.reply_to,
                "expected an address such as reponses@reply.cabinet.fr",
            ));
        };
        if local.contains('+') || inbound.reply_to.parse::<lettre::Address>().is_err() {
            return Err(invalid(
                "inbound.reply_to",
                &inbound.reply_to,
                "expected an address without a + (Rappel adds +token) such as reponses@reply.cabinet.fr",
            ));
        }
        if inbound.max_message_mb == 0 {
            return Err(invalid(
                "inbound.max_message_mb",
                "0",
                "expected at least 1",
            ));
        }
        if inbound.imap.enabled && inbound.imap.host.is_empty() {
            return Err(invalid(
                "inbound.imap.host",
                "",
                "expected the IMAP server's name",
            ));
        }
        if inbound.imap.enabled && inbound.imap.poll_seconds == 0 {
            return Err(invalid(
                "inbound.imap.poll_seconds",
                "0",
                "expected at least 1",
            ));
        }
        if inbound.smtp.enabled && inbound.smtp.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "inbound.smtp.listen",
                &inbound.smtp.listen,
                "expected an address such as 0.0.0.0:2525",
            ));
        }
        let smtp = &inbound.smtp;
        for (setting, value) in [
            ("inbound.smtp.max_connections", smtp.max_connections as u64),
            (
                "inbound.smtp.max_connections_per_ip",
                smtp.max_connections_per_ip as u64,
            ),
            (
                "inbound.smtp.command_timeout_seconds",
                smtp.command_timeout_seconds,
            ),
            (
                "inbound.smtp.data_timeout_seconds",
                smtp.data_timeout_seconds,
            ),
            ("inbound.smtp.max_recipients", smtp.max_recipients as u64),
            ("inbound.smtp.max_commands", u64::from(smtp.max_commands)),
        ] {
            if smtp.enabled && value == 0 {
                return Err(invalid(setting, "0", "expected at least 1"));
            }
        }
        if smtp.enabled && smtp.max_line_bytes < 512 {
            return Err(invalid(
                "inbound.smtp.max_line_bytes",
                &smtp.max_line_bytes.to_string(),
                "expected at least 512 (RFC 5321's command line)",
            ));
        }
        if inbound.smtp.tls_cert.is_empty() != inbound.smtp.tls_key.is_empty() {
            return Err(invalid(
                "inbound.smtp.tls_key",
                &inbound.smtp.tls_key,
                "set both tls_cert and tls_key, or neither",
            ));
        }
        Ok(())
    }
}

/// What loading found beside the values: the `RAPPEL_*` variables that name no setting (to
/// warn about once, then ignore) and where each setting came from.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub ignored_variables: Vec<String>,
    pub sources: Vec<(String, String)>,
}

impl Config {
    /// Refuses values that parse but make no sense (a lifetime of zero, an empty limit), each
    /// naming its setting. [`Config::check`] holds the older checks; new ones go here.
    fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = |setting: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    setting,
                    value: "0".into(),
                    reason: "at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        at_least_one("auth.session_hours", self.auth.session_hours.into())?;
        at_least_one(
            "auth.contact_token_days",
            self.auth.contact_token_days.into(),
        )?;
        at_least_one("portal.link_days", self.portal.link_days.into())?;
        at_least_one("portal.session_hours", self.portal.session_hours.into())?;
        at_least_one("graphql.max_depth", self.graphql.max_depth as u64)?;
        at_least_one("graphql.max_complexity", self.graphql.max_complexity as u64)?;
        at_least_one("graphql.max_batch", self.graphql.max_batch as u64)?;
        at_least_one("graphql.max_body_bytes", self.graphql.max_body_bytes as u64)?;
        at_least_one(
            "graphql.default_page_size",
            self.graphql.default_page_size as u64,
        )?;
        if self.graphql.max_page_size < self.graphql.default_page_size
            || i32::try_from(self.graphql.max_page_size).is_err()
        {
            return Err(ConfigError::Invalid {
                setting: "graphql.max_page_size",
                value: self.graphql.max_page_size.to_string(),
                reason: format!(
                    "at least graphql.default_page_size ({}) and at most {}",
                    self.graphql.default_page_size,
                    i32::MAX
                ),
            });
        }
        at_least_one(
            "delivery.reminder_every_days",
            self.delivery.reminder_every_days.into(),
        )?;
        at_least_one("smtp.pool_size", self.smtp.pool_size.into())?;
        at_least_one("storage.max_file_mb", self.storage.max_file_mb)?;
        at_least_one(
            "storage.max_files_per_answer",
            self.storage.max_files_per_answer as u64,
        )?;
        // Younger objects may belong to an answer being recorded right now.
        at_least_one(
            "storage.sweep_after_hours",
            self.storage.sweep_after_hours.into(),
        )?;
        if self.smtp.transport == "smtp" {
            at_least_one("smtp.port", self.smtp.port.into())?;
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid {
                setting: "log.format",
                value: self.log.format.clone(),
                reason: "expected \"text\" or \"json\"".into(),
            });
        }
        if !matches!(self.log.color.as_str(), "auto" | "always" | "never") {
            return Err(ConfigError::Invalid {
                setting: "log.color",
                value: self.log.color.clone(),
                reason: "expected \"auto\", \"always\" or \"never\"".into(),
            });
        }
        for origin in &self.http.cors_origins {
            if !is_cors_origin(origin) {
                return Err(ConfigError::Invalid {
                    setting: "http.cors_origins",
                    value: origin.clone(),
                    reason: "expected an origin such as https://app.example (scheme, host and \
                             optional port, no path), or \"*\""
                        .into(),
                });
            }
        }
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                setting: "metrics.listen",
                value: self.metrics.listen.clone(),
                reason: "expected an address such as 127.0.0.1:9090, or \"\" to serve /metrics \
                         on the main address"
                    .into(),
            });
        }
        Ok(())
    }
}

/// `*`, or a browser origin: `http(s)://host[:port]`, nothing after it.
fn is_cors_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.origin().ascii_serialization() == origin
}

/// Whether an environment variable is addressed to Rappel's settings at all. `RAPPEL_TEST_*`
/// belongs to the test suite and `RAPPEL_CONFIG` names the file.
fn is_rappel_variable(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("RAPPEL_") else {
        return false;
    };
    let rest = rest.to_ascii_lowercase();
    !rest.starts_with("test_") && rest != "config"
}

/// The dotted setting a `RAPPEL_*` variable sets, when it names one:
/// `RAPPEL_DATABASE_URL` -> `database.url`, `RAPPEL_LISTEN` -> `listen`.
fn setting_of_variable(key: &str) -> Option<String> {
    if !is_rappel_variable(key) {
        return None;
    }
    let key = key.strip_prefix("RAPPEL_")?.to_ascii_lowercase();
    let dotted = SECTIONS
        .iter()
        .find_map(|section| {
            key.strip_prefix(section)
                .and_then(|rest| rest.strip_prefix('_'))
                .map(|rest| format!("{section}.{rest}"))
        })
        .unwrap_or_else(|| key.clone());
    let known = known_settings();
    if known.contains(&dotted) {
        return Some(dotted);
    }
    // Nested sections: `RAPPEL_INBOUND_IMAP_HOST` -> `inbound.imap.host`.
    known
        .into_iter()
        .find(|setting| setting.replace('.', "_") == key)
}

/// Every setting's dotted name (`listen`, `database.url`, ...).
fn known_settings() -> Vec<String> {
    flatten(&serde_json::to_value(Config::default()).unwrap_or_default())
        .into_iter()
        .map(|(setting, _)| setting)
        .collect()
}

/// `{"database": {"url": "x"}}` -> `[("database.url", "\"x\"")]`, values written as in TOML.
fn flatten(value: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &serde_json::Value, settings: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(section) => {
                for (name, value) in section {
                    let name = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    walk(&name, value, settings);
                }
            }
            other => settings.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut settings = Vec::new();
    walk("", value, &mut settings);
    settings.sort();
    settings
}

/// Secrets are shown as `"***"` when set; a database URL keeps everything but its password.
fn mask_secret(setting: &str, value: &str) -> String {
    let secret = ["password", "token", "secret"]
        .iter()
        .any(|word| setting.contains(word));
    if secret && value != "\"\"" {
        "\"***\"".into()
    } else if setting == "database.url" {
        crate::app::redact(value)
    } else {
        value.to_string()
    }
}

/// A figment source in words: the file's path, the variable's name, or the default.
fn describe_source(metadata: &figment::Metadata) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => format!("file {}", path.display()),
        _ if metadata.name.contains("environment") => "environment".into(),
        _ => "built-in default".into(),
    }
}

/// `RAPPEL_DATABASE_URL` -> `database.url`, `RAPPEL_LISTEN` -> `listen`. Only variables that
/// name a known setting are read; the others are reported by [`Config::load_reporting`].
fn environment() -> Env {
    Env::prefixed("RAPPEL_").filter_map(|key| {
        // Keys arrive without the prefix, as written (upper case).
        setting_of_variable(&format!("RAPPEL_{}", key.as_str())).map(Into::into)
    })
}

/// Figment's messages name the key but bury it in profile and source details; keep both
/// visible and short.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let path = error.path.join(".");
            let source = error
                .metadata
                .as_ref()
                .map(|metadata| metadata.name.to_string())
                .unwrap_or_default();
            if path.is_empty() {
                format!("{} (from {source})", error.kind)
            } else {
                format!("setting `{path}`: {} (from {source})", error.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_default_file_matches_the_built_in_defaults() {
        let from_file: Config = Figment::new()
            .merge(Toml::file(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH),
            ))
            .extract()
            .expect("config/default.toml parses");
        let file = serde_json::to_value(&from_file).expect("serializes");
        let built_in = serde_json::to_value(Config::default()).expect("serializes");
        assert_eq!(file, built_in);
    }

    #[test]
    fn an_unknown_setting_in_a_file_is_refused_by_name() {
        let error = Figment::new()
            .merge(Toml::string("[database]\nurll = \"x\"\n"))
            .extract::<Config>()
            .expect_err("typo must fail");
        assert!(describe_figment_error(error).contains("urll"));
    }

    #[test]
    fn only_variables_naming_a_setting_are_read_from_the_environment() {
        assert_eq!(
            setting_of_variable("RAPPEL_DATABASE_URL").as_deref(),
            Some("database.url")
        );
        assert_eq!(
            setting_of_variable("RAPPEL_LISTEN").as_deref(),
            Some("listen")
        );
        assert_eq!(
            setting_of_variable("RAPPEL_LOG_FORMAT").as_deref(),
            Some("log.format")
        );
        // What Kubernetes injects for a Service named `rappel`, and typos.
        for ignored in [
            "RAPPEL_PORT",
            "RAPPEL_SERVICE_HOST",
            "RAPPEL_SERVICE_PORT",
            "RAPPEL_PORT_8080_TCP_ADDR",
            "RAPPEL_DATABASE_URLL",
            "RAPPEL_TEST_POSTGRES_URL",
            "RAPPEL_CONFIG",
        ] {
            assert_eq!(setting_of_variable(ignored), None, "{ignored}");
        }
        assert!(is_rappel_variable("RAPPEL_PORT"));
        assert!(!is_rappel_variable("RAPPEL_TEST_POSTGRES_URL"));
        assert!(!is_rappel_variable("RAPPEL_CONFIG"));
    }

    fn refused_setting(change: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::default();
        change(&mut config);
        match config.check().and_then(|()| config.validate()) {
            Err(ConfigError::Invalid { setting, .. }) => setting.to_string(),
            other => panic!("expected a refused setting, got {other:?}"),
        }
    }

    #[test]
    fn settings_that_make_no_sense_are_refused_by_name() {
        assert_eq!(
            refused_setting(|c| c.auth.session_hours = 0),
            "auth.session_hours"
        );
        assert_eq!(
            refused_setting(|c| c.portal.link_days = 0),
            "portal.link_days"
        );
        assert_eq!(
            refused_setting(|c| c.auth.contact_token_days = 0),
            "auth.contact_token_days"
        );
        assert_eq!(
            refused_setting(|c| c.graphql.max_body_bytes = 0),
            "graphql.max_body_bytes"
        );
        assert_eq!(
            refused_setting(|c| c.graphql.max_depth = 0),
            "graphql.max_depth"
        );
        assert_eq!(
            refused_setting(|c| c.http.cors_origins = vec!["https://app.example/".into()]),
            "http.cors_origins"
        );
        assert_eq!(
            refused_setting(|c| c.http.cors_origins = vec!["app.example".into()]),
            "http.cors_origins"
        );
        assert_eq!(
            refused_setting(|c| c.graphql.max_batch = 0),
            "graphql.max_batch"
        );
        assert_eq!(
            refused_setting(|c| c.graphql.default_page_size = 0),
            "graphql.default_page_size"
        );
        assert_eq!(
            refused_setting(|c| c.graphql.max_page_size = 10),
            "graphql.max_page_size"
        );
        assert_eq!(
            refused_setting(|c| c.delivery.reminder_every_days = 0),
            "delivery.reminder_every_days"
        );
        assert_eq!(refused_setting(|c| c.smtp.pool_size = 0), "smtp.pool_size");
        assert_eq!(
            refused_setting(|c| c.delivery.sending_hour = 24),
            "delivery.sending_hour"
        );
        assert_eq!(
            refused_setting(|c| c.database.pool_size = 0),
            "database.pool_size"
        );
        assert_eq!(
            refused_setting(|c| c.log.format = "xml".into()),
            "log.format"
        );
        assert_eq!(refused_setting(|c| c.log.color = "yes".into()), "log.color");
        assert_eq!(
            refused_setting(|c| c.metrics.listen = "nowhere".into()),
            "metrics.listen"
        );
        Config::default()
            .validate()
            .expect("the defaults are valid");
    }

    #[test]
    fn secrets_are_masked_and_database_passwords_hidden() {
        assert_eq!(mask_secret("smtp.password", "\"hunter2\""), "\"***\"");
        assert_eq!(mask_secret("metrics.bearer_token", "\"abc\""), "\"***\"");
        assert_eq!(mask_secret("smtp.password", "\"\""), "\"\"");
        assert_eq!(
            mask_secret("database.url", "\"postgres://app:pw@db/rappel\""),
            "\"postgres://app:***@db/rappel\""
        );
        assert_eq!(
            mask_secret("listen", "\"0.0.0.0:8080\""),
            "\"0.0.0.0:8080\""
        );
    }

    #[test]
    fn nested_inbound_settings_have_variables_and_their_passwords_are_masked() {
        assert_eq!(
            setting_of_variable("RAPPEL_INBOUND_IMAP_PASSWORD").as_deref(),
            Some("inbound.imap.password")
        );
        assert_eq!(
            setting_of_variable("RAPPEL_INBOUND_SMTP_LISTEN").as_deref(),
            Some("inbound.smtp.listen")
        );
        assert_eq!(
            setting_of_variable("RAPPEL_INBOUND_REPLY_TO").as_deref(),
            Some("inbound.reply_to")
        );
        assert_eq!(setting_of_variable("RAPPEL_INBOUND_IMAP_NOPE"), None);
        assert!(known_settings().contains(&"inbound.smtp.tls_key".to_string()));
        assert_eq!(
            mask_secret("inbound.imap.password", "\"hunter2\""),
            "\"***\""
        );
    }

    #[test]
    fn inbound_needs_a_reply_address_without_a_plus() {
        let mut config = Config::default();
        config.inbound.enabled = true;
        assert!(config.check().is_err(), "no reply address");
        config.inbound.reply_to = "reponses+x@reply.cabinet.fr".into();
        assert!(config.check().is_err(), "a + in the reply address");
        config.inbound.reply_to = "reponses@reply.cabinet.fr".into();
        assert!(config.check().is_ok());
        config.inbound.smtp.enabled = true;
        config.inbound.smtp.listen = "not an address".into();
        assert!(config.check().is_err());
    }
}
