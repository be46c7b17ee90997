//! The layering rule, checked on the sources: no door (GraphQL resolvers, the HTTP handlers,
//! the CLI, the bootstrap, the portal to come) writes through `crate::db` itself; writes go
//! through an operation of `crate::ops`, where the rules live.
//!
//! "Writes" is computed, not listed: a top-level function of `src/db/*.rs` writes when its body
//! inserts, updates, deletes or executes SQL, or calls another function of `db` that does. A
//! door may not call one (`catalog::insert_category(..)`, `db::tokens::revoke(..)`), import one
//! (`use crate::db::tokens::{revoke}`), or open a transaction or run diesel itself
//! (`transaction!`, `with_conn!`). Reads (`find_*`, `list_*`) stay allowed: the query side of
//! GraphQL reads the data layer directly. And the operations know no door: no async-graphql,
//! axum or HTML in `src/ops`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What marks a data function as a writer (comments stripped first).
const WRITE_MARKERS: &[&str] = &[
    "insert_into",
    "diesel::update",
    "diesel::delete",
    ".execute(",
    "batch_execute",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
];

/// Macros that open a transaction or run a query: the data layer's and the operations' tools.
const DOOR_FORBIDDEN_MACROS: &[&str] = &["transaction!", "with_conn!"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of a Rust source without `//` comments (line and doc comments).
fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| {
            // A `//` inside a string literal ("https://...") is kept: only a `//` after an
            // even number of quotes starts a comment.
            let mut quotes = 0;
            let bytes = line.as_bytes();
            for index in 0..bytes.len() {
                match bytes[index] {
                    b'"' if index == 0 || bytes[index - 1] != b'\\' => quotes += 1,
                    b'/' if quotes % 2 == 0 && bytes.get(index + 1) == Some(&b'/') => {
                        return &line[..index];
                    }
                    _ => {}
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The top-level functions of a module's source: name -> body (comments stripped).
fn top_level_functions(source: &str) -> BTreeMap<String, String> {
    let mut functions = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in strip_comments(source).lines() {
        let starts_fn = [
            "pub async fn ",
            "pub fn ",
            "async fn ",
            "fn ",
            "pub(crate) async fn ",
            "pub(crate) fn ",
        ]
        .iter()
        .find(|prefix| line.starts_with(*prefix));
        let ends_fn = !line.starts_with(char::is_whitespace)
            && !line.is_empty()
            && !line.starts_with('}')
            && !line.starts_with(')')
            && starts_fn.is_none();
        if starts_fn.is_some() || ends_fn {
            if let Some((name, body)) = current.take() {
                functions.insert(name, body);
            }
        }
        if let Some(prefix) = starts_fn {
            let name: String = line[prefix.len()..]
                .bytes()
                .take_while(|byte| is_ident(*byte))
                .map(char::from)
                .collect();
            current = Some((name, String::new()));
        }
        if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((name, body)) = current {
        functions.insert(name, body);
    }
    functions
}

/// Whether `text` calls `name(` as a whole identifier, optionally behind `path::`.
fn calls(text: &str, name: &str) -> bool {
    let needle = format!("{name}(");
    text.match_indices(&needle)
        .any(|(index, _)| index == 0 || !is_ident(text.as_bytes()[index - 1]))
}

/// Every writing function of the data layer, as (module, function).
fn db_writers(db_folder: &Path) -> BTreeSet<(String, String)> {
    let mut modules: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for entry in std::fs::read_dir(db_folder).expect("src/db") {
        let path = entry.expect("entry").path();
        let module = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_string();
        if path.extension().is_some_and(|ext| ext == "rs")
            && !["mod", "schema"].contains(&module.as_str())
        {
            let source = std::fs::read_to_string(&path).expect("db source");
            modules.insert(module, top_level_functions(&source));
        }
    }
    let mut writers: BTreeSet<(String, String)> = modules
        .iter()
        .flat_map(|(module, functions)| {
            functions
                .iter()
                .filter(|(_, body)| WRITE_MARKERS.iter().any(|marker| body.contains(marker)))
                .map(move |(name, _)| (module.clone(), name.clone()))
        })
        .collect();
    // A function calling a writer writes too (same module: a bare call; another: `module::`).
    loop {
        let mut grown = false;
        for (module, functions) in &modules {
            for (name, body) in functions {
                let key = (module.clone(), name.clone());
                if writers.contains(&key) {
                    continue;
                }
                let calls_writer = writers.iter().any(|(writer_module, writer)| {
                    let path_call = format!("{writer_module}::{writer}(");
                    (writer_module == module && calls(body, writer)) || body.contains(&path_call)
                });
                if calls_writer {
                    writers.insert(key);
                    grown = true;
                }
            }
        }
        if !grown {
            return writers;
        }
    }
}

/// The `use crate::db...;` statements of a source, whitespace removed.
fn db_imports(text: &str) -> Vec<String> {
    let mut imports = Vec::new();
    for (start, _) in text.match_indices("use crate::db") {
        let end = text[start..]
            .find(';')
            .map_or(text.len(), |end| start + end);
        imports.push(text[start..end].split_whitespace().collect());
    }
    imports
}

fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(index, _)| {
        let before = index.checked_sub(1).map(|i| text.as_bytes()[i]);
        let after = text.as_bytes().get(index + word.len()).copied();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Whether the module path `module` in a door's text names the operations' module of that
/// name (`use crate::ops::{catalog, ...}` or `ops::catalog::`), not the data layer's.
fn module_is_ops(text: &str, module: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        line.starts_with("use crate::ops") && has_word(line, module)
    })
}

/// What a door's source does that only operations may: each finding in words.
fn door_violations(text: &str, writers: &BTreeSet<(String, String)>) -> Vec<String> {
    let text = strip_comments(text);
    let mut found = Vec::new();
    for (module, writer) in writers {
        let call = format!("{module}::{writer}(");
        for (index, _) in text.match_indices(&call) {
            let before = &text[..index];
            if before.as_bytes().last().is_some_and(|byte| is_ident(*byte)) {
                continue;
            }
            let qualified_by = before.strip_suffix("::").map(|path| {
                path.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default()
            });
            let is_db = match qualified_by {
                Some(parent) => parent == "db",
                None => !module_is_ops(&text, module),
            };
            if is_db {
                found.push(format!("calls the data layer's writer {module}::{writer}"));
            }
        }
        for import in db_imports(&text) {
            if has_word(&import, module) && has_word(&import, writer) {
                found.push(format!(
                    "imports the data layer's writer {module}::{writer}"
                ));
            }
        }
    }
    for forbidden in DOOR_FORBIDDEN_MACROS {
        if text.contains(forbidden) {
            found.push(format!("uses {forbidden}"));
        }
    }
    found.sort();
    found.dedup();
    found
}

fn rust_files(path: &Path, into: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("folder") {
            rust_files(&entry.expect("entry").path(), into);
        }
    } else if path.extension().is_some_and(|ext| ext == "rs") {
        into.push(path.to_path_buf());
    }
}

/// Every door's source file.
fn doors() -> Vec<PathBuf> {
    let src = root().join("src");
    let mut files = Vec::new();
    for door in [
        "graphql", "portal", "http.rs", "main.rs", "setup.rs", "inbound",
    ] {
        let path = src.join(door);
        if path.exists() {
            rust_files(&path, &mut files);
        }
    }
    files
}

#[test]
fn the_data_layer_writers_are_found_and_its_readers_are_not() {
    let writers = db_writers(&root().join("src/db"));
    for writer in [
        ("catalog", "insert_category"),
        ("catalog", "update_service"),
        ("missions", "transition"),
        ("missions", "insert_lines"),
        ("work", "transition_request"),
        ("tokens", "insert"),
        ("tokens", "revoke_contact_access"),
        ("outbox", "enqueue_many"),
        ("outbox", "delete_endpoint"),
        ("firms", "insert_firm"),
        ("clients", "set_client_archived"),
    ] {
        assert!(
            writers.contains(&(writer.0.to_string(), writer.1.to_string())),
            "{}::{} writes and must be recognised as a writer",
            writer.0,
            writer.1
        );
    }
    for reader in [
        ("catalog", "find_service"),
        ("clients", "list_clients"),
        ("work", "list_requests"),
        ("tokens", "find_valid"),
        ("firms", "find_user"),
    ] {
        assert!(
            !writers.contains(&(reader.0.to_string(), reader.1.to_string())),
            "{}::{} only reads",
            reader.0,
            reader.1
        );
    }
}

#[test]
fn no_door_writes_through_the_data_layer_or_opens_a_transaction() {
    let writers = db_writers(&root().join("src/db"));
    let doors = doors();
    assert!(doors.len() >= 10, "the doors are found: {doors:?}");
    let mut report = Vec::new();
    for door in &doors {
        let text = std::fs::read_to_string(door).expect("door source");
        for finding in door_violations(&text, &writers) {
            report.push(format!(
                "{}: {finding}",
                door.strip_prefix(root()).unwrap_or(door).display()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "doors must call an operation of crate::ops to write, not crate::db:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_rule_catches_a_resolver_that_writes_itself() {
    let writers = db_writers(&root().join("src/db"));
    // A resolver as someone might write it again: each way of reaching a writer is caught.
    let regressions = [
        "use crate::db::{catalog, clients};\n\
         async fn create_category(ctx: &Context<'_>) {\n\
             catalog::insert_category(&mut conn.as_db(), 1, \"x\", now).await;\n\
         }",
        "async fn r() { crate::db::missions::insert_lines(&mut db, &lines).await; }",
        "use crate::db::tokens::{find_valid, revoke};\nasync fn r() { revoke(&mut db, 1, now).await; }",
        "async fn r() { let x = transaction!(conn, |tx| { Ok(()) }); }",
    ];
    for source in regressions {
        assert!(
            !door_violations(source, &writers).is_empty(),
            "not caught:\n{source}"
        );
    }
    // What doors do today passes: reads, and operations named like the data layer's writers.
    let allowed = "use crate::db::{catalog, clients};\nuse crate::ops;\n\
                   async fn r() {\n\
                       catalog::find_service(&mut db, 1, 2).await;\n\
                       ops::catalog::update_service(env, &actor, 1, &input).await;\n\
                       // catalog::insert_category(...) in a comment is no call\n\
                   }";
    assert_eq!(door_violations(allowed, &writers), Vec::<String>::new());
}

#[test]
fn operations_know_no_graphql_http_or_html() {
    let mut files = Vec::new();
    rust_files(&root().join("src/ops"), &mut files);
    assert!(files.len() >= 9, "the operations are found: {files:?}");
    let mut report = Vec::new();
    for file in &files {
        let text = strip_comments(&std::fs::read_to_string(file).expect("ops source"));
        for door_only in [
            "async_graphql",
            "axum",
            "Html",
            "crate::graphql",
            "crate::http",
        ] {
            if text.contains(door_only) {
                report.push(format!(
                    "{}: uses {door_only}",
                    file.strip_prefix(root()).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
