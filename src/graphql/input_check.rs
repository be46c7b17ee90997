//! One check over every text a caller sends, before any resolver runs: string arguments
//! written in the query, the defaults of its variables, and the variables themselves, at any
//! depth (input objects, lists, JSON). A NUL or another control character is refused with
//! BAD_USER_INPUT naming the argument or variable path, so no resolver, database or mail
//! header ever sees one. Line breaks and tabs stay allowed (multi-line texts); single-line
//! rules (names, emails) are the validators' job. This module must never change a value.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{ErrorExtensions as _, Pos, ServerError, ServerResult, Value, Variables};

use crate::error::AppError;

/// Checks the literals of a list of arguments as written in the query (the parser's value
/// type is not public, so this is a macro over inferred types). Variables inside an argument
/// are checked with the variables; null stands in for them here.
macro_rules! check_arguments {
    ($arguments:expr) => {
        for (name, value) in $arguments {
            let literals = value
                .node
                .clone()
                .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null));
            let Ok(literals) = literals;
            check_value(&literals, name.node.as_str(), Some(value.pos))?;
        }
    };
}

/// The first character of `text` that no text input may hold, if any: control characters
/// other than line feed, carriage return and tab.
pub fn forbidden_character(text: &str) -> Option<char> {
    text.chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Checks the variables and every argument of `document`: run on every parsed request (HTTP,
/// batch and WebSocket) by the schema's extension ([`super::pipeline`]).
pub fn check_request(document: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    for (name, value) in variables.iter() {
        check_value(&value.clone(), name.as_str(), None)?;
    }
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values().collect(),
    };
    for operation in operations {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                check_value(
                    &default.node,
                    definition.node.name.node.as_str(),
                    Some(default.pos),
                )?;
            }
        }
        for directive in &operation.node.directives {
            check_arguments!(&directive.node.arguments);
        }
        check_selection_set(&operation.node.selection_set.node)?;
    }
    for fragment in document.fragments.values() {
        check_selection_set(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

fn check_selection_set(set: &SelectionSet) -> ServerResult<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                check_arguments!(&field.node.arguments);
                for directive in &field.node.directives {
                    check_arguments!(&directive.node.arguments);
                }
                check_selection_set(&field.node.selection_set.node)?;
            }
            Selection::FragmentSpread(spread) => {
                for directive in &spread.node.directives {
                    check_arguments!(&directive.node.arguments);
                }
            }
            Selection::InlineFragment(fragment) => {
                for directive in &fragment.node.directives {
                    check_arguments!(&directive.node.arguments);
                }
                check_selection_set(&fragment.node.selection_set.node)?;
            }
        }
    }
    Ok(())
}

fn check_value(value: &Value, path: &str, pos: Option<Pos>) -> ServerResult<()> {
    match value {
        Value::String(text) => check_string(text, path, pos),
        Value::List(items) => {
            for (index, item) in items.iter().enumerate() {
                check_value(item, &format!("{path}[{index}]"), pos)?;
            }
            Ok(())
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                check_key(key.as_str(), path, pos)?;
                check_value(item, &format!("{path}.{key}"), pos)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_key(key: &str, path: &str, pos: Option<Pos>) -> ServerResult<()> {
    match forbidden_character(key) {
        Some(found) => Err(refusal(path, found, pos)),
        None => Ok(()),
    }
}

fn check_string(text: &str, path: &str, pos: Option<Pos>) -> ServerResult<()> {
    match forbidden_character(text) {
        Some(found) => Err(refusal(path, found, pos)),
        None => Ok(()),
    }
}

fn refusal(path: &str, found: char, pos: Option<Pos>) -> ServerError {
    let message = format!(
        "{path} contains a control character (U+{:04X}); remove it and try again \
         (line breaks and tabs are accepted in multi-line texts)",
        u32::from(found)
    );
    AppError::bad_input(path, message)
        .extend()
        .into_server_error(pos.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_but_line_breaks_and_tabs_pass() {
        assert_eq!(forbidden_character("a\u{0}b"), Some('\u{0}'));
        assert_eq!(forbidden_character("a\u{1b}[31m"), Some('\u{1b}'));
        assert_eq!(forbidden_character("a\u{7f}"), Some('\u{7f}'));
        assert_eq!(forbidden_character("a\u{85}"), Some('\u{85}'));
        assert_eq!(forbidden_character("line 1\r\nline 2\tend"), None);
        assert_eq!(forbidden_character("Société Générale €"), None);
    }

    #[test]
    fn nested_variables_are_named_by_their_path() {
        let variables = Variables::from_json(serde_json::json!({
            "input": { "name": "ok", "items": [{ "title": "fine" }, { "title": "bad\u{0}" }] }
        }));
        let document = async_graphql::parser::parse_query("query { __typename }").expect("parses");
        let error = check_request(&document, &variables).expect_err("refused");
        let extensions = error.extensions.expect("extensions");
        assert_eq!(
            extensions.get("field"),
            Some(&Value::from("input.items[1].title"))
        );
        assert_eq!(extensions.get("code"), Some(&Value::from("BAD_USER_INPUT")));
    }

    #[test]
    fn literal_arguments_are_checked_at_any_depth() {
        let document = async_graphql::parser::parse_query(
            r#"query($x: String) { a(b: { c: ["ok", "no\u0007"] }, d: $x) }"#,
        )
        .expect("parses");
        let error = check_request(&document, &Variables::default()).expect_err("refused");
        let extensions = error.extensions.expect("extensions");
        assert_eq!(extensions.get("field"), Some(&Value::from("b.c[1]")));
    }
}
