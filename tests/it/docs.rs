//! The schema documents itself: every type, field, argument, enum value and input field of the
//! full schema (what `rappel export-schema` prints) has a description written for a GraphQL
//! user, with no Rust notation in it, and `DateTime` values carry at most milliseconds.

use async_graphql::Positioned;
use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    FieldDefinition, InputValueDefinition, TypeKind, TypeSystemDefinition,
};

/// Every place of the schema that should carry a description, named like `Type.field(arg)`,
/// with its description (None when it has none). Built-in directives are left out: their
/// text is async-graphql's, from the GraphQL specification.
fn described_places(sdl: &str) -> Vec<(String, Option<String>)> {
    let document = parse_schema(sdl).expect("the exported schema parses");
    let text = |description: &Option<Positioned<String>>| {
        description.as_ref().map(|text| text.node.clone())
    };
    let mut places = Vec::new();
    let fields = |places: &mut Vec<_>, owner: &str, list: &[Positioned<FieldDefinition>]| {
        for field in list {
            let name = format!("{owner}.{}", field.node.name.node);
            places.push((name.clone(), text(&field.node.description)));
            for argument in &field.node.arguments {
                places.push((
                    format!("{name}({})", argument.node.name.node),
                    text(&argument.node.description),
                ));
            }
        }
    };
    let inputs = |places: &mut Vec<_>, owner: &str, list: &[Positioned<InputValueDefinition>]| {
        for input in list {
            places.push((
                format!("{owner}.{}", input.node.name.node),
                text(&input.node.description),
            ));
        }
    };
    for definition in document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let definition = definition.node;
        let owner = definition.name.node.to_string();
        places.push((owner.clone(), text(&definition.description)));
        match &definition.kind {
            TypeKind::Object(object) => fields(&mut places, &owner, &object.fields),
            TypeKind::Interface(interface) => fields(&mut places, &owner, &interface.fields),
            TypeKind::InputObject(input) => inputs(&mut places, &owner, &input.fields),
            TypeKind::Enum(enumeration) => {
                for value in &enumeration.values {
                    places.push((
                        format!("{owner}.{}", value.node.value.node),
                        text(&value.node.description),
                    ));
                }
            }
            TypeKind::Scalar | TypeKind::Union(_) => {}
        }
    }
    places
}

/// The Rust notation a GraphQL user should never read, found in `description`.
fn rust_notation(description: &str) -> Option<&'static str> {
    let mut rest = description;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        if after[..end].contains("::") {
            return Some("a backticked Rust path");
        }
        rest = &after[end + 1..];
    }
    if description.contains("[`") {
        return Some("an intra-doc link");
    }
    for (needle, what) in [
        ("Option<", "Option<...>"),
        ("Vec<", "Vec<...>"),
        ("DateTime<Utc>", "DateTime<Utc>"),
        ("Implement the ", "async-graphql's scalar boilerplate"),
        ("::", "a Rust path"),
    ] {
        if description.contains(needle) {
            return Some(what);
        }
    }
    let words = description.split(|c: char| !c.is_alphanumeric() && c != '_');
    for word in words {
        if word == "Self" || word == "impl" {
            return Some("the Rust keyword Self or impl");
        }
    }
    None
}

#[test]
fn every_type_field_argument_and_enum_value_of_the_schema_is_described() {
    let undescribed: Vec<String> = described_places(&rappel::graphql::schema_sdl())
        .into_iter()
        .filter(|(_, description)| {
            description
                .as_deref()
                .is_none_or(|text| text.trim().is_empty())
        })
        .map(|(place, _)| place)
        .collect();
    assert!(
        undescribed.is_empty(),
        "{} places of the schema have no description:\n{}",
        undescribed.len(),
        undescribed.join("\n")
    );
}

#[test]
fn no_description_of_the_schema_holds_rust_notation() {
    let leaks: Vec<String> = described_places(&rappel::graphql::schema_sdl())
        .into_iter()
        .filter_map(|(place, description)| {
            let what = rust_notation(description.as_deref()?)?;
            Some(format!("{place}: {what}"))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "Rust notation in descriptions:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn the_rust_notation_check_catches_what_it_should() {
    for leak in [
        "An RFC 5545 rule held in [`LineSchedule::rrule`].",
        "See `crate::domain::Frequency`.",
        "Implement the DateTime<Utc> scalar",
        "An Option<String> of the title.",
        "A Vec<Item>.",
        "Returns Self.",
        "Written by the impl of the trait.",
    ] {
        assert!(rust_notation(leak).is_some(), "{leak} passed the check");
    }
    for fine in [
        "Send as `Authorization: Bearer <token>`.",
        "Every 2 months, anchored like MONTHLY; `FREQ=MONTHLY;BYMONTHDAY=30` has none.",
        "The firm's own title (clients never read it).",
    ] {
        assert_eq!(rust_notation(fine), None, "{fine} was refused");
    }
}

#[test]
fn date_scalars_name_their_specification() {
    let sdl = rappel::graphql::schema_sdl();
    for scalar in ["Date", "DateTime"] {
        let line = sdl
            .lines()
            .find(|line| line.starts_with(&format!("scalar {scalar} ")))
            .unwrap_or_else(|| panic!("no `scalar {scalar}` line with a directive in:\n{sdl}"));
        assert!(
            line.contains(r#"@specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc3339"#),
            "{line}"
        );
    }
}
