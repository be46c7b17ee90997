//! Throttling of sign-in: `login` per account and per client IP, sign-in link redemption
//! (GraphQL `redeemSignInLink` and the /sign-in page, one gate for both) per client IP,
//! and the bounded pool that runs password checks. A throttled attempt is answered
//! RATE_LIMITED with a retry-after value before any database read or password hash.
//! Holds counters in memory only (one instance's view); never logs an email or a token.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_graphql::ErrorExtensions as _;
use tokio::sync::Semaphore;

use crate::config::AuthConfig;

/// The client's IP address, put into each request's data by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Keys whose number of entries triggers a sweep of the ones that no longer limit anything.
const SWEEP_ABOVE: usize = 10_000;

/// A keyed rate limit (GCRA): `burst` attempts at once, then one every `window / burst`;
/// after a whole `window` without attempts a key has its full burst again.
#[derive(Debug)]
pub struct KeyedLimit<K> {
    burst: u32,
    emission: Duration,
    window: Duration,
    /// Per key, the theoretical arrival time of the next attempt.
    keys: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    pub fn new(burst: u32, window: Duration) -> Self {
        let burst = burst.max(1);
        Self {
            burst,
            emission: window / burst,
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` must wait before its next attempt (zero: it may go now).
    fn wait(&self, key: &K, now: Instant) -> Duration {
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(&next) = keys.get(key) else {
            return Duration::ZERO;
        };
        // Allowed while `next` is no further than the tolerance (window - one emission) ahead.
        let tolerance = self.window.saturating_sub(self.emission);
        next.saturating_duration_since(now)
            .saturating_sub(tolerance)
    }

    /// Spends one attempt of `key`.
    fn spend(&self, key: &K, now: Instant) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if keys.len() > SWEEP_ABOVE {
            keys.retain(|_, next| *next > now);
        }
        let next = keys.get(key).copied().unwrap_or(now).max(now) + self.emission;
        keys.insert(key.clone(), next);
    }

    /// Checks and spends in one step.
    pub fn attempt(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.wait(key, now) {
            Duration::ZERO => {
                self.spend(key, now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    /// The burst this limit allows.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// A refused attempt: how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds to wait, rounded up (at least 1).
    pub fn retry_after_seconds(&self) -> u64 {
        let seconds = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        seconds.max(1)
    }

    /// The GraphQL error: code RATE_LIMITED, `retryAfter` in seconds.
    pub fn into_error(self) -> async_graphql::Error {
        let seconds = self.retry_after_seconds();
        async_graphql::Error::new(format!(
            "too many sign-in attempts: try again in {seconds} s"
        ))
        .extend_with(|_, extensions| {
            extensions.set("code", "RATE_LIMITED");
            extensions.set("retryAfter", seconds);
        })
    }
}

/// Sign-in throttling and password checks of one server.
#[derive(Debug)]
pub struct SignInGate {
    per_account: KeyedLimit<String>,
    per_ip: KeyedLimit<IpAddr>,
    password_checks: Semaphore,
    checks_run: AtomicU64,
}

impl SignInGate {
    pub fn from_config(config: &AuthConfig) -> Self {
        let window = Duration::from_secs(config.sign_in_window_seconds.max(1));
        Self {
            per_account: KeyedLimit::new(config.sign_in_attempts_per_account, window),
            per_ip: KeyedLimit::new(config.sign_in_attempts_per_ip, window),
            password_checks: Semaphore::new(config.max_concurrent_password_checks.max(1)),
            checks_run: AtomicU64::new(0),
        }
    }

    /// Admits one sign-in attempt for `account` (a normalised email; None for a sign-in link)
    /// from `ip` (None in process), or says how long to wait. Spends from both limits only
    /// when both allow it.
    pub fn admit(&self, account: Option<&str>, ip: Option<IpAddr>) -> Result<(), Throttled> {
        let now = Instant::now();
        let account = account.map(str::to_lowercase);
        let wait = account
            .as_ref()
            .map_or(Duration::ZERO, |account| {
                self.per_account.wait(account, now)
            })
            .max(ip.map_or(Duration::ZERO, |ip| self.per_ip.wait(&ip, now)));
        if wait > Duration::ZERO {
            return Err(Throttled { retry_after: wait });
        }
        if let Some(account) = &account {
            self.per_account.spend(account, now);
        }
        if let Some(ip) = &ip {
            self.per_ip.spend(ip, now);
        }
        Ok(())
    }

    /// [`SignInGate::admit`], logging and counting a refusal (`kind`: "staff" for a
    /// password sign-in, "link" for a sign-in link): what every sign-in door does.
    pub fn admit_counted(
        &self,
        kind: &'static str,
        account: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<(), Throttled> {
        self.admit(account, ip).inspect_err(|throttled| {
            tracing::warn!(
                client_ip = ?ip,
                retry_after = throttled.retry_after_seconds(),
                "sign-in attempt throttled"
            );
            ::metrics::counter!("rappel_sign_ins_total", "kind" => kind, "result" => "throttled")
                .increment(1);
        })
    }

    /// Verifies a password against a stored hash on the blocking pool, at most
    /// `max_concurrent_password_checks` at once. Holds no database connection.
    pub async fn verify_password(&self, password: String, stored_hash: String) -> bool {
        let Ok(_permit) = self.password_checks.acquire().await else {
            return false;
        };
        self.checks_run.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &stored_hash))
            .await
            .unwrap_or(false)
    }

    /// How many password checks ran (for tests and diagnostics).
    pub fn password_checks_run(&self) -> u64 {
        self.checks_run.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_and_recovers_after_the_window() {
        let limit = KeyedLimit::new(3, Duration::from_secs(30));
        let start = Instant::now();
        for _ in 0..3 {
            limit.attempt(&"a", start).expect("within the burst");
        }
        let wait = limit.attempt(&"a", start).expect_err("the fourth waits");
        assert_eq!(
            wait,
            Duration::from_secs(10),
            "one attempt comes back per 10 s"
        );
        limit
            .attempt(&"b", start)
            .expect("another key is not affected");
        limit
            .attempt(&"a", start + Duration::from_secs(10))
            .expect("one attempt back after 10 s");
        assert!(
            limit
                .attempt(&"a", start + Duration::from_secs(10))
                .is_err()
        );
        let later = start + Duration::from_secs(40);
        for _ in 0..3 {
            limit
                .attempt(&"a", later)
                .expect("the whole burst is back after the window");
        }
    }

    #[test]
    fn a_refused_attempt_spends_nothing() {
        let limit = KeyedLimit::new(1, Duration::from_secs(10));
        let start = Instant::now();
        limit.attempt(&1, start).expect("first");
        for second in 1..10 {
            assert!(
                limit
                    .attempt(&1, start + Duration::from_secs(second))
                    .is_err()
            );
        }
        limit
            .attempt(&1, start + Duration::from_secs(10))
            .expect("refusals did not push the wait further");
    }

    #[tokio::test]
    async fn the_gate_refuses_past_either_limit_and_checks_no_password_then() {
        let config = AuthConfig {
            sign_in_attempts_per_account: 2,
            sign_in_attempts_per_ip: 3,
            sign_in_window_seconds: 60,
            ..AuthConfig::default()
        };
        let gate = SignInGate::from_config(&config);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other_ip: IpAddr = "192.0.2.2".parse().expect("ip");
        gate.admit(Some("a@x.fr"), Some(ip)).expect("1");
        gate.admit(Some("A@X.FR"), Some(other_ip))
            .expect("2, any case");
        let throttled = gate
            .admit(Some("a@x.fr"), Some(other_ip))
            .expect_err("the account's third");
        assert!(throttled.retry_after_seconds() >= 1);
        gate.admit(Some("b@x.fr"), Some(ip))
            .expect("another account, IP's 2nd");
        gate.admit(Some("c@x.fr"), Some(ip)).expect("IP's 3rd");
        assert!(
            gate.admit(Some("d@x.fr"), Some(ip)).is_err(),
            "the IP's 4th"
        );
        assert!(
            gate.admit(None, Some(ip)).is_err(),
            "links from that IP too"
        );
        let error = throttled.into_error();
        let extensions = format!("{:?}", error.extensions);
        assert!(extensions.contains("RATE_LIMITED") && extensions.contains("retryAfter"));

        let hash = crate::auth::hash_password("pw").expect("hash");
        assert!(gate.verify_password("pw".into(), hash.clone()).await);
        assert!(!gate.verify_password("no".into(), hash).await);
        assert_eq!(gate.password_checks_run(), 2);
    }
}
