//! Limits on the shape of a GraphQL document, checked before async-graphql validates it:
//! size, tokens, fields once fragments are expanded, aliases, root fields, and sign-ins per
//! operation and per batch. Validation's cost grows with the expanded document (a few hundred
//! bytes of nested fragment spreads expand to millions of fields), so these run on the raw text
//! and on the parsed document with each fragment counted once (memoised), never expanded.
//! Never runs a resolver, never touches the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Request, ServerError, ServerResult};

use crate::config::GraphqlConfig;

/// Root fields that sign someone in: each costs a password check or a token redemption, so an
/// operation may hold one, and a batch one.
pub const SIGN_IN_FIELDS: [&str; 2] = ["login", "redeemSignInLink"];

/// The document limits of one schema.
#[derive(Debug, Clone)]
pub struct DocumentLimits {
    pub max_document_bytes: usize,
    pub max_tokens: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
}

impl DocumentLimits {
    pub fn from_config(config: &GraphqlConfig) -> Self {
        Self {
            max_document_bytes: config.max_document_bytes,
            max_tokens: config.max_tokens,
            max_fields: config.max_fields,
            max_aliases: config.max_aliases,
            max_root_fields: config.max_root_fields,
        }
    }
}

/// Put into every request of one HTTP batch: the batch's single sign-in.
#[derive(Debug, Default)]
pub struct SignInBudget {
    spent: AtomicBool,
}

impl SignInBudget {
    /// A budget shared by the operations of one batch.
    pub fn per_batch() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// True the first time only.
    fn take(&self) -> bool {
        !self.spent.swap(true, Ordering::SeqCst)
    }
}

/// A refusal: the message names what was exceeded; `limit` names the setting.
fn refusal(message: String, limit: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "BAD_USER_INPUT");
    extensions.set("field", "query");
    extensions.set("limit", limit);
    error.extensions = Some(extensions);
    error
}

/// Counts GraphQL lexical tokens (punctuators, names, numbers, strings), skipping whitespace,
/// commas and comments; stops counting past `stop_after`. Anything unexpected counts as one
/// token: the parser refuses it later.
pub fn count_tokens(source: &str, stop_after: usize) -> usize {
    let bytes = source.as_bytes();
    let mut count = 0;
    let mut at = 0;
    while at < bytes.len() && count <= stop_after {
        match bytes[at] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                at += 1;
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
                continue;
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    at += if bytes[at..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                at += 3;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'.' if bytes[at..].starts_with(b"...") => at += 3,
            byte if byte.is_ascii_alphabetic() || byte == b'_' => {
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                    at += 1;
                }
            }
            byte if byte.is_ascii_digit() || byte == b'-' => {
                at += 1;
                while at < bytes.len()
                    && (bytes[at].is_ascii_alphanumeric()
                        || matches!(bytes[at], b'.' | b'+' | b'-'))
                {
                    at += 1;
                }
            }
            _ => at += 1,
        }
        count += 1;
    }
    count
}

/// What a selection set amounts to once its fragment spreads are expanded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Fields at every level.
    pub fields: u64,
    /// Fields with an alias, at every level.
    pub aliases: u64,
    /// Fields of the set itself (the root fields, for an operation).
    pub top_fields: u64,
    /// Sign-in fields of the set itself.
    pub top_sign_ins: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.top_fields = self.top_fields.saturating_add(other.top_fields);
        self.top_sign_ins = self.top_sign_ins.saturating_add(other.top_sign_ins);
    }
}

/// Tallies a document's selection sets, each fragment once.
struct Tallier<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<&'a str, Tally>,
    visiting: HashSet<&'a str>,
}

impl<'a> Tallier<'a> {
    fn new(document: &'a ExecutableDocument) -> Self {
        Self {
            document,
            memo: HashMap::new(),
            visiting: HashSet::new(),
        }
    }

    fn fragment(&mut self, name: &'a str) -> Tally {
        if let Some(tally) = self.memo.get(name) {
            return *tally;
        }
        // A cycle or an unknown fragment: validation reports it; it adds nothing here.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Tally::default();
        };
        if !self.visiting.insert(name) {
            return Tally::default();
        }
        let tally = self.set(&fragment.node.selection_set.node);
        self.visiting.remove(name);
        self.memo.insert(name, tally);
        tally
    }

    fn set(&mut self, set: &'a SelectionSet) -> Tally {
        let mut tally = Tally::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let inner = self.set(&field.selection_set.node);
                    tally.fields = tally.fields.saturating_add(1).saturating_add(inner.fields);
                    tally.aliases = tally
                        .aliases
                        .saturating_add(u64::from(field.alias.is_some()))
                        .saturating_add(inner.aliases);
                    tally.top_fields = tally.top_fields.saturating_add(1);
                    if SIGN_IN_FIELDS.contains(&field.name.node.as_str()) {
                        tally.top_sign_ins = tally.top_sign_ins.saturating_add(1);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let fragment = self.fragment(spread.node.fragment_name.node.as_str());
                    tally.add(fragment);
                }
                Selection::InlineFragment(inline) => {
                    let inner = self.set(&inline.node.selection_set.node);
                    tally.add(inner);
                }
            }
        }
        tally
    }
}

/// Checks a parsed document against the limits; `operation_name` picks the operation that
/// will run (all of them are checked when it is absent). Returns whether it signs in.
pub fn check_document(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    limits: &DocumentLimits,
) -> Result<bool, ServerError> {
    let mut tallier = Tallier::new(document);
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations
            .iter()
            .filter(|(name, _)| operation_name.is_none_or(|wanted| name.as_str() == wanted))
            .map(|(_, operation)| operation)
            .collect(),
    };
    // Validation walks every operation and every fragment definition: all count.
    let mut fields: u64 = 0;
    for operation in document.operations.iter() {
        fields = fields.saturating_add(tallier.set(&operation.1.node.selection_set.node).fields);
    }
    let names: Vec<&str> = document
        .fragments
        .keys()
        .map(|name| name.as_str())
        .collect();
    for name in names {
        fields = fields.saturating_add(tallier.fragment(name).fields);
    }
    if fields > limits.max_fields as u64 {
        return Err(refusal(
            format!(
                "this document holds {fields} fields once its fragments are expanded; \
                 the limit is {} (graphql.max_fields)",
                limits.max_fields
            ),
            "max_fields",
        ));
    }
    let mut signs_in = false;
    for operation in operations {
        let tally = tallier.set(&operation.node.selection_set.node);
        if tally.aliases > limits.max_aliases as u64 {
            return Err(refusal(
                format!(
                    "this operation uses {} aliases; the limit is {} (graphql.max_aliases)",
                    tally.aliases, limits.max_aliases
                ),
                "max_aliases",
            ));
        }
        if tally.top_fields > limits.max_root_fields as u64 {
            return Err(refusal(
                format!(
                    "this operation selects {} root fields; the limit is {} \
                     (graphql.max_root_fields)",
                    tally.top_fields, limits.max_root_fields
                ),
                "max_root_fields",
            ));
        }
        if operation.node.ty == OperationType::Mutation && tally.top_sign_ins > 0 {
            if tally.top_sign_ins > 1 {
                return Err(refusal(
                    format!(
                        "this operation signs in {} times; an operation may hold one login or \
                         redeemSignInLink",
                        tally.top_sign_ins
                    ),
                    "sign_ins_per_operation",
                ));
            }
            signs_in = true;
        }
    }
    Ok(signs_in)
}

/// Checks text limits, then the parsed document, before async-graphql's own parsing and
/// validation. The parsed document is handed on, so the text is parsed once.
pub fn check_request(
    mut request: Request,
    limits: &DocumentLimits,
    budget: Option<&SignInBudget>,
) -> ServerResult<Request> {
    let bytes = request.query.len();
    if bytes > limits.max_document_bytes {
        return Err(refusal(
            format!(
                "this document is {bytes} bytes long; the limit is {} \
                 (graphql.max_document_bytes)",
                limits.max_document_bytes
            ),
            "max_document_bytes",
        ));
    }
    let tokens = count_tokens(&request.query, limits.max_tokens);
    if tokens > limits.max_tokens {
        return Err(refusal(
            format!(
                "this document holds more than {} tokens (graphql.max_tokens)",
                limits.max_tokens
            ),
            "max_tokens",
        ));
    }
    let operation_name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        // async-graphql answers the syntax error itself.
        return Ok(request);
    };
    let signs_in = check_document(document, operation_name.as_deref(), limits)?;
    if signs_in && budget.is_some_and(|budget| !budget.take()) {
        return Err(refusal(
            "a batch may sign in once: send the other login or redeemSignInLink on its own".into(),
            "sign_ins_per_batch",
        ));
    }
    Ok(request)
}

/// Applies [`check_request`] to a request of the schema (over HTTP and WebSocket alike), with
/// the sign-in budget its batch put in its data, if any. Called by [`super::pipeline`].
pub(super) fn check_prepared(request: Request, limits: &DocumentLimits) -> ServerResult<Request> {
    let budget = request
        .data
        .get(&std::any::TypeId::of::<Arc<SignInBudget>>())
        .and_then(|value| value.downcast_ref::<Arc<SignInBudget>>())
        .cloned();
    check_request(request, limits, budget.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DocumentLimits {
        DocumentLimits::from_config(&GraphqlConfig::default())
    }

    fn fragment_bomb(levels: usize) -> String {
        let mut query = format!("query {{ ...F{levels} }} fragment F0 on Query {{ __typename }}");
        for level in 1..=levels {
            let spreads = format!("...F{} ", level - 1).repeat(10);
            query.push_str(&format!(" fragment F{level} on Query {{ {spreads}}}"));
        }
        query
    }

    fn tally_of(query: &str) -> Tally {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let mut tallier = Tallier::new(&document);
        let operation = document.operations.iter().next().expect("an operation").1;
        tallier.set(&operation.node.selection_set.node)
    }

    #[test]
    fn tokens_are_counted_like_the_graphql_lexer_does() {
        assert_eq!(count_tokens("{ a }", 100), 3);
        assert_eq!(
            count_tokens("query($x: Int = -1.5e3) { a(b: $x), c }", 100),
            19
        );
        assert_eq!(count_tokens("# comment { } { }\n{ a }", 100), 3);
        assert_eq!(count_tokens(r#"{ a(s: "x { } \" y") }"#, 100), 8);
        assert_eq!(count_tokens(r#"{ a(s: """ { } \""" """) }"#, 100), 8);
        assert_eq!(count_tokens("{ ...F }", 100), 4);
        assert_eq!(count_tokens(&"{ a }".repeat(1000), 10), 11, "stops early");
    }

    #[test]
    fn fragments_are_expanded_by_counting_each_once() {
        let tally = tally_of(&fragment_bomb(7));
        assert_eq!(tally.fields, 10_000_000);
        assert_eq!(tally.top_fields, 10_000_000);
        let tally = tally_of(&fragment_bomb(40));
        assert_eq!(tally.fields, u64::MAX, "saturates instead of overflowing");
        let tally = tally_of("{ a: viewer { b: id name } ... on Query { c: __typename } }");
        assert_eq!(
            tally,
            Tally {
                fields: 4,
                aliases: 3,
                top_fields: 2,
                top_sign_ins: 0
            }
        );
    }

    #[test]
    fn a_cyclic_fragment_does_not_loop_and_is_left_to_validation() {
        let tally = tally_of(
            "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }",
        );
        assert_eq!(tally.fields, 1);
    }

    #[test]
    fn a_fragment_explosion_is_refused_naming_the_limit() {
        let error =
            check_request(Request::new(fragment_bomb(7)), &limits(), None).expect_err("refused");
        // 10^7 through the operation, 1 + 10 + ... + 10^7 through the fragment definitions.
        assert!(
            error.message.contains("21111111 fields"),
            "{}",
            error.message
        );
        assert!(error.message.contains("graphql.max_fields"));
        let error = check_request(Request::new(fragment_bomb(3)), &limits(), None)
            .expect_err("1000 fields through the operation and 1111 through the fragments");
        assert!(error.message.contains("max_fields"));
        check_request(
            Request::new(
                "{ ...F } fragment F on Query { viewer { ...V } } fragment V on Viewer { id name }",
            ),
            &limits(),
            None,
        )
        .expect("a small one passes");
    }

    #[test]
    fn aliases_root_fields_and_sign_ins_are_capped_per_operation() {
        let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
        let error = check_request(
            Request::new(format!("{{ viewer {{ kind }} x {{ {aliases} }} }}")),
            &limits(),
            None,
        )
        .expect_err("refused");
        assert!(error.message.contains("31 aliases"), "{}", error.message);
        let roots = "__typename ".repeat(21);
        let error = check_request(Request::new(format!("{{ {roots} }}")), &limits(), None)
            .expect_err("refused");
        assert!(
            error.message.contains("21 root fields"),
            "{}",
            error.message
        );
        let two = r#"mutation { a: login(email: "a", password: "b") { token } b: login(email: "a", password: "c") { token } }"#;
        let error = check_request(Request::new(two), &limits(), None).expect_err("refused");
        assert!(
            error.message.contains("signs in 2 times"),
            "{}",
            error.message
        );
        let via_fragment = r#"mutation { login(email: "a", password: "b") { token } ...M } fragment M on Mutation { redeemSignInLink(token: "x") { token } }"#;
        assert!(check_request(Request::new(via_fragment), &limits(), None).is_err());
        let one = r#"mutation { login(email: "a", password: "b") { token } }"#;
        let budget = SignInBudget::per_batch();
        check_request(Request::new(one), &limits(), Some(&budget)).expect("the first sign-in");
        let error = check_request(Request::new(one), &limits(), Some(&budget))
            .expect_err("the second of the batch");
        assert!(error.message.contains("a batch may sign in once"));
    }

    #[test]
    fn big_documents_and_many_tokens_are_refused_before_parsing() {
        let big = format!("{{ __typename }} # {}", "x".repeat(40 * 1024));
        let error = check_request(Request::new(big), &limits(), None).expect_err("refused");
        assert!(error.message.contains("graphql.max_document_bytes"));
        let many = format!("{{ __typename(a: [{}]) }}", "1 ".repeat(6000));
        let error = check_request(Request::new(many), &limits(), None).expect_err("refused");
        assert!(error.message.contains("graphql.max_tokens"));
    }
}
