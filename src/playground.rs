//! The GraphiQL playground served at `GET /graphql` to browsers: a page and the vendored
//! production builds of GraphiQL, React and the explorer plugin (`assets/graphiql/`, refreshed
//! by `scripts/vendor-graphiql`), embedded in the binary and served under `/graphql/assets/`.
//! The page references no other host, runs no inline script, and its Content-Security-Policy
//! forbids loading or connecting anywhere but Rappel itself. It never holds a secret other than
//! the demo staff token, and that only when `demo = true` seeded it in this process.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the playground's files are served.
pub const ASSETS_PATH: &str = "/graphql/assets";

/// Only Rappel's own files, and requests to Rappel itself (HTTP and WebSocket). GraphiQL sets
/// inline `style` attributes, and its fonts and icons are `data:` URLs inside its CSS.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One vendored file: its name under [`ASSETS_PATH`], media type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const ASSETS: [Asset; 8] = [
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        bytes: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "plugin-explorer.umd.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/plugin-explorer.umd.js"),
    },
    Asset {
        name: "plugin-explorer.css",
        content_type: CSS,
        bytes: include_bytes!("../assets/graphiql/plugin-explorer.css"),
    },
    Asset {
        name: "rappel.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/rappel.js"),
    },
    Asset {
        name: "LICENSES.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/LICENSES.txt"),
    },
];

/// The demo staff token to prefill in the Headers tab: set once by `rappel serve` when
/// `demo = true` seeded the demo firm in this process (the database keeps only its hash).
#[derive(Debug, Clone, Default)]
pub struct DemoToken(Arc<OnceLock<String>>);

impl DemoToken {
    pub fn set(&self, token: &str) {
        let _ = self.0.set(token.to_string());
    }

    fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The query the editor opens with: how to authenticate, and the README's examples.
const DEFAULT_QUERY: &str = "\
# Rappel's GraphQL API. Put a bearer token in the
# Headers tab below:
#   { \"Authorization\": \"Bearer rpl_...\" }
# `rappel serve` prints a staff token and a contact
# token when it seeds its demo; staff sign in with
#   mutation { login(input: { email: \"...\", password: \"...\" }) { token } }
# Anonymous callers reach only `viewer`, `login` and
# `redeemSignInLink`.

# With a staff token (the firm view):
{ firm { name clients { nodes { name } } } }

# With a contact token (the client view):
# { client { requests { nodes { text dueDate status } } } }
";

/// The Headers tab when no demo token is known: says where a token goes.
const PLACEHOLDER_HEADERS: &str = "{\n  \"Authorization\": \"Bearer rpl_... (paste a token here: see the comment in the query editor)\"\n}";

/// The page at `GET /graphql` for browsers.
pub fn page(demo_token: &DemoToken) -> Response {
    let headers = match demo_token.get() {
        Some(token) => serde_json::to_string_pretty(&serde_json::json!({
            "Authorization": format!("Bearer {token}")
        }))
        .unwrap_or_default(),
        None => PLACEHOLDER_HEADERS.to_string(),
    };
    let settings = serde_json::json!({
        "endpoint": "/graphql",
        "subscriptionEndpoint": "/graphql/ws",
        "defaultQuery": DEFAULT_QUERY,
        "defaultHeaders": headers,
    });
    // `<` cannot end the JSON's script element early once escaped.
    let settings = settings.to_string().replace('<', "\\u003c");
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Rappel GraphiQL</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"{ASSETS_PATH}/graphiql.min.css\">\
         <link rel=\"stylesheet\" href=\"{ASSETS_PATH}/plugin-explorer.css\">\
         <link rel=\"stylesheet\" href=\"{ASSETS_PATH}/page.css\">\
         </head><body><div id=\"graphiql\">Loading GraphiQL...</div>\
         <script id=\"rappel-settings\" type=\"application/json\">{settings}</script>\
         <script src=\"{ASSETS_PATH}/react.production.min.js\"></script>\
         <script src=\"{ASSETS_PATH}/react-dom.production.min.js\"></script>\
         <script src=\"{ASSETS_PATH}/graphiql.min.js\"></script>\
         <script src=\"{ASSETS_PATH}/plugin-explorer.umd.js\"></script>\
         <script src=\"{ASSETS_PATH}/rappel.js\"></script>\
         </body></html>\n"
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        html,
    )
        .into_response()
}

/// The page's own layout: GraphiQL fills the window.
const PAGE_CSS: &str = "html, body, #graphiql { height: 100%; margin: 0; }\n";

/// `GET /graphql/assets/{name}`: a vendored file, or 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    let found = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| (asset.content_type, asset.bytes))
        .or_else(|| (name == "page.css").then_some((CSS, PAGE_CSS.as_bytes())));
    match found {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_file_is_served_and_none_names_another_host() {
        for asset in &ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.name);
            if asset.content_type == CSS {
                let text = String::from_utf8_lossy(asset.bytes);
                assert!(
                    !text.contains("url(http"),
                    "{} loads a remote file",
                    asset.name
                );
                assert!(!text.contains("@import"), "{} imports a file", asset.name);
            }
        }
    }
}
