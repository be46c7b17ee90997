//! Outbound webhook delivery: one signed HTTP POST of an event to an
//! accounting firm's endpoint.
//!
//! This module does three things and nothing else:
//!
//! * **Signing** per [Standard Webhooks](https://www.standardwebhooks.com):
//!   secrets are `whsec_<base64 key>`, and each request carries `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` so the
//!   firm can check that the event really came from Rappel and was not replayed.
//! * **Vetting the destination** against server-side request forgery: the URL
//!   must be `https`, carry no credentials, and every address its host resolves
//!   to must be public. The check is enforced *inside* the HTTP client's DNS
//!   resolver, so the addresses that were checked are the very addresses that
//!   get connected to (no DNS-rebinding window between check and connect).
//! * **Sending** with [`WebhookSender::send`] and classifying the outcome as
//!   success, transient failure (worth retrying) or permanent failure.
//!
//! Guarantees callers rely on:
//!
//! * The request body is exactly the client-visible payload passed to
//!   [`WebhookSender::send`]; the only other things sent are the three
//!   signature headers, `content-type` and a fixed `user-agent`. No cookies,
//!   no proxies, no redirects followed, nothing internal.
//! * Nothing is ever sent to a private, loopback, link-local or otherwise
//!   non-public address unless the sender was built with `allow_private`
//!   (meant for tests and local development only).
//! * At most [`MAX_RESPONSE_BODY`] bytes of an endpoint's answer are read.
//!
//! Retry scheduling, persistence of attempts and choice of message ids belong
//! to the caller: to let the firm deduplicate, retry with the *same* `msg_id`
//! and a fresh timestamp.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use sha2::Sha256;
use url::{Host, Url};

/// Prefix every Standard Webhooks secret carries.
const SECRET_PREFIX: &str = "whsec_";
/// Shortest key the Standard Webhooks spec accepts, in bytes.
const MIN_KEY_BYTES: usize = 24;
/// Longest key the Standard Webhooks spec accepts, in bytes.
const MAX_KEY_BYTES: usize = 64;
/// Key length of the secrets we generate, in bytes.
const GENERATED_KEY_BYTES: usize = 32;

/// `User-Agent` of every delivery, so firms can recognise (and allow-list) us.
pub const USER_AGENT: &str = "Rappel-Webhooks/1";
/// Most bytes of an endpoint's response body that are ever read.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Longest `Retry-After` we honour; an endpoint asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// How much of a failing endpoint's body is quoted in [`WebhookFailure::message`].
const FAILURE_EXCERPT_CHARS: usize = 200;

/// Standard base64 that accepts secrets with or without `=` padding: other
/// Standard Webhooks libraries differ on padding and the key is the same.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Errors from configuration-level operations: bad secrets and client setup.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret does not start with `whsec_`.
    #[error("webhook secret must start with \"whsec_\"")]
    MissingSecretPrefix,
    /// The part after `whsec_` is not base64. The decoder's own message is
    /// deliberately dropped: it quotes the offending byte of the secret.
    #[error("webhook secret is not valid base64 after \"whsec_\"")]
    SecretNotBase64,
    /// The decoded key is shorter than 24 or longer than 64 bytes.
    #[error("webhook secret key must be 24 to 64 bytes, got {0}")]
    SecretLength(usize),
    /// The HTTP client could not be built (e.g. TLS backend initialisation).
    #[error("could not build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a webhook URL or one of its addresses was refused. The `Display`
/// text is meant for the firm's settings page, so it names the problem plainly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejected {
    /// The text is not a URL at all.
    #[error("webhook URL is not a valid URL ({0})")]
    Invalid(String),
    /// Plain `http` (or another scheme) while only `https` is allowed.
    #[error("webhook URLs must use https")]
    NotHttps,
    /// A scheme other than http/https, even with private addresses allowed.
    #[error("webhook URLs must use http or https, not {0}")]
    UnsupportedScheme(String),
    /// `https://user:password@host/...`: credentials would be sent along.
    #[error("webhook URLs must not contain a user name or password")]
    Credentials,
    /// No host, e.g. `https:///path`.
    #[error("webhook URLs must name a host")]
    MissingHost,
    /// The URL's host is an IP literal that is not public.
    #[error("{0} is a private or loopback address")]
    PrivateAddress(IpAddr),
    /// The host name resolves to an address that is not public.
    #[error("{host} resolves to {ip}, a private or loopback address")]
    PrivateResolution {
        /// Host name as written in the URL.
        host: String,
        /// First offending address it resolved to.
        ip: IpAddr,
    },
    /// The host name could not be resolved (or resolved to nothing).
    #[error("{host} could not be resolved: {reason}")]
    Unresolvable {
        /// Host name as written in the URL.
        host: String,
        /// Resolver's explanation.
        reason: String,
    },
}

/// A delivery the endpoint accepted with a 2xx status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// HTTP status, always 200..=299.
    pub status: u16,
    /// First [`MAX_RESPONSE_BODY`] bytes of the response body (lossy UTF-8).
    pub body_excerpt: String,
}

/// A delivery that did not succeed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WebhookFailure {
    /// `true` for 5xx, 408, 429, timeouts and connection errors: retry later.
    /// `false` for other 4xx, 3xx (redirects are not followed), refused URLs
    /// and addresses, and bad secrets: retrying the same request cannot help.
    pub transient: bool,
    /// HTTP status when the endpoint answered at all.
    pub status: Option<u16>,
    /// Delay the endpoint asked for with `Retry-After` (transient failures
    /// only), capped at [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
    /// What went wrong, readable by a person; never contains the secret,
    /// the payload or the URL's path and query (those can hold tokens).
    pub message: String,
}

impl WebhookFailure {
    fn permanent(status: Option<u16>, message: impl Into<String>) -> Self {
        Self {
            transient: false,
            status,
            retry_after: None,
            message: message.into(),
        }
    }

    fn transient(status: Option<u16>, message: impl Into<String>) -> Self {
        Self {
            transient: true,
            status,
            retry_after: None,
            message: message.into(),
        }
    }
}

impl From<UrlRejected> for WebhookFailure {
    fn from(rejected: UrlRejected) -> Self {
        Self::permanent(None, rejected.to_string())
    }
}

/// Creates a fresh secret: `whsec_` followed by 32 random bytes in base64.
///
/// `rand::random` draws from the thread-local CSPRNG (ChaCha, seeded from the
/// OS), which is suitable for keys.
pub fn generate_secret() -> String {
    let key: [u8; GENERATED_KEY_BYTES] = rand::random();
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Decodes the HMAC key out of a `whsec_...` secret.
fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(WebhookError::MissingSecretPrefix)?;
    let key = SECRET_BASE64
        .decode(encoded)
        .map_err(|_| WebhookError::SecretNotBase64)?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err(WebhookError::SecretLength(key.len()));
    }
    Ok(key)
}

/// Computes the Standard Webhooks signature header value:
/// `v1,<base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}"))>`, where the
/// key is the base64-decoded part of `secret` after `whsec_`.
///
/// `body` must be the exact bytes that will be sent: the receiver verifies
/// against the raw body, so any re-serialisation breaks the signature.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, WebhookError> {
    let key = decode_secret(secret)?;
    // HMAC accepts keys of any length; the error branch is unreachable but
    // mapped rather than unwrapped.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|_| WebhookError::SecretLength(key.len()))?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

/// Whether `ip` is a public unicast address, i.e. one a webhook may target.
///
/// Refused: unspecified, loopback, RFC 1918 private, CGNAT (100.64/10),
/// link-local (169.254/16, which includes the cloud metadata service at
/// 169.254.169.254; fe80::/10), "this network" 0/8, IETF protocol assignments,
/// documentation and benchmarking ranges, multicast, reserved 240/4 and
/// broadcast; for IPv6 everything outside global unicast 2000::/3 (so ::1,
/// ::, fc00::/7 unique-local, fe80::/10, ff00::/8), the special blocks inside
/// it (2001::/23 incl. Teredo, 2001:db8::/32, 3fff::/20), and IPv6 forms that
/// embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96,
/// 6to4 2002::/16) whenever the embedded address is itself not public.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // "this network", includes 0.0.0.0
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..=127).contains(&b)) // CGNAT shared space
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..=31).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // deprecated 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // ::ffff:127.0.0.1 reaches 127.0.0.1 on dual-stack hosts.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 well-known prefix: the gateway forwards to the embedded IPv4.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // Only global unicast can be public; this also rules out ::, ::1,
    // the deprecated IPv4-compatible ::a.b.c.d, fc00::/7, fe80::/10,
    // fec0::/10 and ff00::/8.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23 IETF protocol assignments (Teredo 2001::/32 tunnels to
    // arbitrary IPv4, benchmarking 2001:2::/48, ORCHID, ...).
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return false;
    }
    // Documentation prefixes.
    if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        return false;
    }
    // 6to4 embeds an IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    true
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Checks everything about a webhook URL that can be checked without DNS:
/// `https` only (plain `http` too when `allow_private`), no user name or
/// password, a host present, and an IP-literal host public unless
/// `allow_private`.
///
/// Host names are vetted later, when they are resolved (see
/// [`resolve_and_check`] and the sender's pinned resolver).
pub fn check_url_syntax(url: &str, allow_private: bool) -> Result<Url, UrlRejected> {
    let parsed = Url::parse(url).map_err(|e| UrlRejected::Invalid(e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other if allow_private => return Err(UrlRejected::UnsupportedScheme(other.to_owned())),
        _ => return Err(UrlRejected::NotHttps),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRejected::Credentials);
    }
    // The url crate normalises IP spellings (0x7f.1, 2130706433, [::1]) into
    // Host::Ipv4/Ipv6, so obfuscated literals are caught here too.
    let ip = match parsed.host() {
        None => return Err(UrlRejected::MissingHost),
        Some(Host::Domain("")) => return Err(UrlRejected::MissingHost),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip.filter(|ip| !allow_private && !is_public_ip(*ip)) {
        return Err(UrlRejected::PrivateAddress(ip));
    }
    Ok(parsed)
}

/// Resolves the URL's host and returns its socket addresses, refusing if
/// *any* of them is not public (unless `allow_private`): an attacker
/// controlling DNS could otherwise mix a private address in with public ones.
///
/// Useful to validate a URL when a firm saves it. Deliveries do not rely on
/// it: [`WebhookSender`] repeats the check at connection time.
pub async fn resolve_and_check(
    url: &Url,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, UrlRejected> {
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        None => Err(UrlRejected::MissingHost),
        Some(Host::Ipv4(v4)) => checked_literal(IpAddr::V4(v4), port, allow_private),
        Some(Host::Ipv6(v6)) => checked_literal(IpAddr::V6(v6), port, allow_private),
        Some(Host::Domain(name)) => match lookup_checked(name, port, allow_private).await {
            Ok(addrs) => Ok(addrs),
            Err(LookupError::Rejected(rejected)) => Err(rejected),
            Err(LookupError::Dns(err)) => Err(UrlRejected::Unresolvable {
                host: name.to_owned(),
                reason: err.to_string(),
            }),
        },
    }
}

fn checked_literal(
    ip: IpAddr,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, UrlRejected> {
    if !allow_private && !is_public_ip(ip) {
        return Err(UrlRejected::PrivateAddress(ip));
    }
    Ok(vec![SocketAddr::new(ip, port)])
}

/// Resolution failed either because an address was refused (permanent) or
/// because DNS itself failed (may be temporary).
enum LookupError {
    Rejected(UrlRejected),
    Dns(std::io::Error),
}

async fn lookup_checked(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, LookupError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(LookupError::Dns)?
        .collect();
    if addrs.is_empty() {
        return Err(LookupError::Dns(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no addresses found",
        )));
    }
    let refused = addrs
        .iter()
        .find(|a| !allow_private && !is_public_ip(a.ip()));
    if let Some(bad) = refused {
        // Worth a warning: a firm's URL pointing inward is either a mistake
        // or a probe of our network.
        tracing::warn!(host, ip = %bad.ip(), "webhook host resolves to a non-public address; refused");
        return Err(LookupError::Rejected(UrlRejected::PrivateResolution {
            host: host.to_owned(),
            ip: bad.ip(),
        }));
    }
    Ok(addrs)
}

/// reqwest DNS resolver that refuses non-public addresses. Because reqwest
/// connects to exactly the addresses a resolver returns, checking here pins
/// the connection to vetted addresses: a rebinding DNS server cannot answer
/// "public" to a pre-check and "127.0.0.1" to the connect.
#[derive(Debug, Clone, Copy)]
struct PinnedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port (or the scheme default).
            match lookup_checked(&host, 0, allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                // Boxed as UrlRejected so `send` can find it in the error
                // chain and report a permanent failure.
                Err(LookupError::Rejected(rejected)) => Err(rejected.into()),
                Err(LookupError::Dns(err)) => Err(err.into()),
            }
        })
    }
}

/// Sends signed webhook requests. Cheap to clone; clones share one
/// connection pool. Build one per process (or per `allow_private` setting).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    timeout: Duration,
    allow_private: bool,
}

impl WebhookSender {
    /// Builds a sender whose requests give up after `timeout` (connecting,
    /// sending and reading the answer together). `allow_private` permits
    /// plain `http` and private/loopback destinations: for tests and local
    /// development only, never for firms' URLs in production.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            // A redirect would go to a destination we never vetted.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(USER_AGENT)
            // One client for every delivery: its connections are kept alive per host and
            // reused; each write leaves at once (reqwest's default, stated here).
            .tcp_nodelay(true)
            // A proxy (e.g. from HTTPS_PROXY) would resolve the target itself,
            // bypassing the pinned resolver.
            .no_proxy()
            .dns_resolver(Arc::new(PinnedResolver { allow_private }))
            .https_only(!allow_private)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Self {
            client,
            timeout,
            allow_private,
        })
    }

    /// POSTs `body` to `url`, signed for `secret` with `msg_id` and
    /// `timestamp` (Unix seconds, normally now), and reports the outcome.
    ///
    /// `body` is sent verbatim and must be the client-visible JSON payload
    /// only; it is refused if it is not valid JSON. Headers sent:
    /// `content-type: application/json`, `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`, `user-agent`.
    ///
    /// A 2xx answer is `Ok`. Everything else is a [`WebhookFailure`]:
    /// transient for 5xx, 408, 429, timeouts and connection errors; permanent
    /// for other 4xx, 3xx (redirects are never followed), refused URLs or
    /// addresses, and invalid secrets or ids.
    pub async fn send(
        &self,
        url: &str,
        secret: &str,
        msg_id: &str,
        timestamp: i64,
        body: &str,
    ) -> Result<WebhookResponse, WebhookFailure> {
        // IP-literal hosts never reach the resolver, so they are vetted here.
        let url = check_url_syntax(url, self.allow_private)?;
        let host = url.host_str().unwrap_or_default().to_owned();

        if serde_json::from_str::<serde_json::Value>(body).is_err() {
            return Err(WebhookFailure::permanent(
                None,
                "webhook payload is not valid JSON",
            ));
        }
        let signature = sign(secret, msg_id, timestamp, body)
            .map_err(|e| WebhookFailure::permanent(None, e.to_string()))?;
        let headers = signed_headers(msg_id, timestamp, &signature)?;

        let result = self
            .client
            .post(url)
            .headers(headers)
            .body(body.to_owned())
            .send()
            .await;
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                let failure = self.transport_failure(err);
                tracing::debug!(msg_id, host, transient = failure.transient, error = %failure.message, "webhook delivery failed");
                return Err(failure);
            }
        };

        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| excerpt(v, FAILURE_EXCERPT_CHARS));
        let body_excerpt = read_capped(response, MAX_RESPONSE_BODY).await;

        let outcome = classify_status(status, retry_after, location.as_deref(), &body_excerpt);
        match &outcome {
            Ok(_) => tracing::debug!(msg_id, host, status, "webhook delivered"),
            Err(f) => {
                tracing::debug!(
                    msg_id,
                    host,
                    status,
                    transient = f.transient,
                    "webhook refused by endpoint"
                )
            }
        }
        outcome.map(|()| WebhookResponse {
            status,
            body_excerpt,
        })
    }

    /// Turns a reqwest error (no HTTP answer at all) into a failure.
    fn transport_failure(&self, err: reqwest::Error) -> WebhookFailure {
        // Our resolver's refusal is buried in the connect error's chain.
        if let Some(rejected) = find_in_chain::<UrlRejected>(&err) {
            return WebhookFailure::from(rejected.clone());
        }
        // without_url: the path or query may hold a token the firm put there.
        let err = err.without_url();
        if err.is_timeout() {
            return WebhookFailure::transient(
                None,
                format!("no answer within {} ms", self.timeout.as_millis()),
            );
        }
        let detail = error_chain(&err);
        if err.is_builder() {
            return WebhookFailure::permanent(None, format!("invalid request: {detail}"));
        }
        if err.is_connect() {
            return WebhookFailure::transient(None, format!("could not connect: {detail}"));
        }
        WebhookFailure::transient(None, format!("request failed: {detail}"))
    }
}

/// Builds the signature headers, refusing ids that cannot be a header value.
fn signed_headers(
    msg_id: &str,
    timestamp: i64,
    signature: &str,
) -> Result<HeaderMap, WebhookFailure> {
    let value = |v: &str, what: &str| {
        HeaderValue::from_str(v).map_err(|_| {
            WebhookFailure::permanent(
                None,
                format!("{what} contains characters not allowed in an HTTP header"),
            )
        })
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", value(msg_id, "webhook id")?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", value(signature, "signature")?);
    Ok(headers)
}

/// Maps an HTTP status to success or a failure of the right kind.
fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    location: Option<&str>,
    body_excerpt: &str,
) -> Result<(), WebhookFailure> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut message = format!("endpoint answered HTTP {status} {reason}")
        .trim_end()
        .to_owned();
    if (300..400).contains(&status) {
        message.push_str("; redirects are not followed");
        if let Some(location) = location {
            message.push_str(&format!(" (Location: {location})"));
        }
    }
    let quoted = excerpt(body_excerpt, FAILURE_EXCERPT_CHARS);
    if !quoted.is_empty() {
        message.push_str(&format!(": {quoted}"));
    }
    let transient = status >= 500 || status == 408 || status == 429;
    if transient {
        Err(WebhookFailure {
            retry_after,
            ..WebhookFailure::transient(Some(status), message)
        })
    } else {
        Err(WebhookFailure::permanent(Some(status), message))
    }
}

/// Reads at most `cap` bytes of the body, chunk by chunk, then drops the
/// response (closing the connection) instead of draining the rest.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < cap {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(cap - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) => break,
            // The status is already known and decides the outcome; a body
            // cut short (e.g. by the timeout) only shortens the excerpt.
            Err(err) => {
                tracing::debug!(error = %err.without_url(), "webhook response body cut short");
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Parses `Retry-After` as delay-seconds or an HTTP-date (IMF-fixdate is an
/// RFC 2822 date, so chrono's parser handles it), capped at
/// [`MAX_RETRY_AFTER`]. Dates in the past mean "now".
fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = (at.with_timezone(&chrono::Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// First `max_chars` characters of `text` on one line, for messages.
fn excerpt(text: &str, max_chars: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    flat.trim().to_owned()
}

fn find_in_chain<T: std::error::Error + 'static>(err: &reqwest::Error) -> Option<&T> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        source = current.source();
    }
    None
}

/// "outer: inner: innermost", since reqwest's own Display is often just
/// "error sending request".
fn error_chain(err: &reqwest::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(current) = source {
        parts.push(current.to_string());
        source = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_matches_the_standard_webhooks_test_vector() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .expect("test value");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_carry_32_random_bytes_and_can_sign() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(decode_secret(&a).expect("test value").len(), 32);
        assert!(
            sign(&a, "msg_1", 1, "{}")
                .expect("test value")
                .starts_with("v1,")
        );
    }

    #[test]
    fn secrets_without_prefix_or_base64_or_with_a_short_key_are_refused() {
        assert!(matches!(
            sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}"),
            Err(WebhookError::MissingSecretPrefix)
        ));
        assert!(matches!(
            sign("whsec_not base64!", "m", 1, "{}"),
            Err(WebhookError::SecretNotBase64)
        ));
        assert!(matches!(
            sign("whsec_c2hvcnQ=", "m", 1, "{}"),
            Err(WebhookError::SecretLength(5))
        ));
    }

    #[test]
    fn secrets_decode_with_or_without_base64_padding() {
        let padded = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        let unpadded = padded.trim_end_matches('=').to_owned();
        assert_ne!(padded, unpadded);
        assert_eq!(
            sign(&padded, "m", 1, "{}").expect("test value"),
            sign(&unpadded, "m", 1, "{}").expect("test value")
        );
    }

    #[test]
    fn only_public_addresses_count_as_public() {
        let cases: &[(&str, bool)] = &[
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.216.34", true),
            ("172.32.0.1", true),
            ("100.128.0.1", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("10.0.0.1", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:80b::200e", true),
            ("::", false),
            ("::1", false),
            ("::127.0.0.1", false),
            ("fc00::1", false),
            ("fd12:3456:789a::1", false),
            ("fe80::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("3fff::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.1.2.3", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::808:808", true),
            ("2002:7f00:1::", false),
            ("2002:c0a8:101::1", false),
            ("2002:808:808::1", true),
        ];
        for (text, expected) in cases {
            let ip: IpAddr = text.parse().expect("test value");
            assert_eq!(is_public_ip(ip), *expected, "{text}");
        }
    }

    #[test]
    fn url_syntax_rules_refuse_http_private_literals_and_credentials() {
        use UrlRejected::*;
        let refused: &[(&str, bool, UrlRejected)] = &[
            ("http://example.com/hook", false, NotHttps),
            ("ftp://example.com/hook", false, NotHttps),
            (
                "ftp://example.com/hook",
                true,
                UnsupportedScheme("ftp".into()),
            ),
            (
                "https://127.0.0.1/hook",
                false,
                PrivateAddress("127.0.0.1".parse().expect("test value")),
            ),
            // Obfuscated spellings of loopback are normalised by the url crate.
            (
                "https://2130706433/hook",
                false,
                PrivateAddress("127.0.0.1".parse().expect("test value")),
            ),
            (
                "https://0x7f.1/hook",
                false,
                PrivateAddress("127.0.0.1".parse().expect("test value")),
            ),
            (
                "https://[::1]/hook",
                false,
                PrivateAddress("::1".parse().expect("test value")),
            ),
            (
                "https://[::ffff:127.0.0.1]/",
                false,
                PrivateAddress("::ffff:127.0.0.1".parse().expect("test value")),
            ),
            (
                "https://169.254.169.254/latest/meta-data",
                false,
                PrivateAddress("169.254.169.254".parse().expect("test value")),
            ),
            ("https://user:pw@example.com/hook", false, Credentials),
            ("https://user@example.com/hook", false, Credentials),
            ("https://user:pw@example.com/hook", true, Credentials),
        ];
        for (url, allow_private, expected) in refused {
            assert_eq!(
                check_url_syntax(url, *allow_private).as_ref(),
                Err(expected),
                "{url}"
            );
        }
        assert!(matches!(
            check_url_syntax("not a url", false),
            Err(Invalid(_))
        ));

        for (url, allow_private) in [
            ("https://hooks.example.com/rappel?token=abc", false),
            ("https://93.184.216.34:8443/hook", false),
            ("http://127.0.0.1:8080/hook", true),
            ("https://[::1]/hook", true),
            ("http://localhost/hook", true),
        ] {
            assert!(check_url_syntax(url, allow_private).is_ok(), "{url}");
        }
    }

    #[test]
    fn refusals_read_as_plain_sentences() {
        assert_eq!(
            UrlRejected::NotHttps.to_string(),
            "webhook URLs must use https"
        );
        assert_eq!(
            UrlRejected::PrivateAddress("127.0.0.1".parse().expect("test value")).to_string(),
            "127.0.0.1 is a private or loopback address"
        );
    }

    #[tokio::test]
    async fn resolving_localhost_is_refused_unless_private_addresses_are_allowed() {
        let url = Url::parse("https://localhost:9/hook").expect("test value");
        match resolve_and_check(&url, false).await {
            Err(UrlRejected::PrivateResolution { host, ip }) => {
                assert_eq!(host, "localhost");
                assert!(ip.is_loopback());
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let addrs = resolve_and_check(&url, true).await.expect("test value");
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }

    #[tokio::test]
    async fn public_ip_literals_resolve_to_themselves_without_dns() {
        let url = Url::parse("https://93.184.216.34/hook").expect("test value");
        let addrs = resolve_and_check(&url, false).await.expect("test value");
        assert_eq!(
            addrs,
            vec!["93.184.216.34:443".parse().expect("test value")]
        );
    }

    #[test]
    fn statuses_are_classified_as_success_transient_or_permanent() {
        for status in [200, 201, 202, 204, 299] {
            assert!(classify_status(status, None, None, "").is_ok(), "{status}");
        }
        for status in [500, 502, 503, 504, 408, 429] {
            let failure = classify_status(status, None, None, "").expect_err("must fail");
            assert!(failure.transient, "{status}");
            assert_eq!(failure.status, Some(status));
        }
        for status in [300, 301, 302, 307, 308, 400, 401, 403, 404, 410, 422] {
            let failure = classify_status(status, Some(Duration::from_secs(5)), None, "")
                .expect_err("must fail");
            assert!(!failure.transient, "{status}");
            assert_eq!(failure.retry_after, None, "{status}");
        }
    }

    #[test]
    fn failure_messages_name_the_status_and_quote_a_short_excerpt() {
        let failure = classify_status(404, None, None, "no\nsuch hook").expect_err("must fail");
        assert_eq!(
            failure.message,
            "endpoint answered HTTP 404 Not Found: no such hook"
        );
        let failure =
            classify_status(301, None, Some("https://elsewhere/"), "").expect_err("must fail");
        assert_eq!(
            failure.message,
            "endpoint answered HTTP 301 Moved Permanently; redirects are not followed (Location: https://elsewhere/)"
        );
        let long = "x".repeat(10_000);
        let failure = classify_status(500, None, None, &long).expect_err("must fail");
        assert!(failure.message.len() < 300);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates_and_is_capped() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("test value")
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:30 GMT", now),
            Some(Duration::from_secs(150))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Fri, 21 Oct 2016 07:28:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn senders_build_with_and_without_private_addresses() {
        assert!(WebhookSender::new(Duration::from_secs(5), false).is_ok());
        assert!(WebhookSender::new(Duration::from_secs(5), true).is_ok());
    }
}
