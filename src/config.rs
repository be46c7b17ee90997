//! Settings: one `Config`, loaded once at start from `config/default.toml` (or `--config FILE`)
//! and `RAPPEL_*` environment variables, checked, then passed down. Never read globally.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Sections of the file; `RAPPEL_<SECTION>_<KEY>` sets `<key>` in `[section]`.
const SECTIONS: [&str; 8] = [
    "http",
    "database",
    "graphql",
    "auth",
    "scheduler",
    "delivery",
    "smtp",
    "webhooks",
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub header_read_timeout_seconds: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub ws_init_timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_hours: u32,
    pub contact_token_days: u32,
    pub sign_in_link_hours: u32,
    pub sign_in_attempts_per_account: u32,
    pub sign_in_attempts_per_ip: u32,
    pub sign_in_window_seconds: u64,
    pub max_concurrent_password_checks: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub enabled: bool,
    pub generation_cron: String,
    pub run_at_start: bool,
    pub batch_size: u32,
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
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_hours: 720,
            contact_token_days: 365,
            sign_in_link_hours: 72,
            sign_in_attempts_per_account: 10,
            sign_in_attempts_per_ip: 50,
            sign_in_window_seconds: 300,
            max_concurrent_password_checks: 2,
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
        Ok(config)
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
        Ok(())
    }
}

/// `RAPPEL_DATABASE_URL` -> `database.url`, `RAPPEL_LISTEN` -> `listen`. Variables under
/// `RAPPEL_TEST_` belong to the test suite, not to the server.
fn environment() -> Env {
    Env::prefixed("RAPPEL_")
        .filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            !key.starts_with("test_") && key != "config"
        })
        .map(|key| {
            // Keys arrive as written (upper case); figment lowercases them only afterwards.
            let key = key.as_str().to_ascii_lowercase();
            for section in SECTIONS {
                if let Some(rest) = key
                    .strip_prefix(section)
                    .and_then(|rest| rest.strip_prefix('_'))
                {
                    return format!("{section}.{rest}").into();
                }
            }
            key.into()
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
}
