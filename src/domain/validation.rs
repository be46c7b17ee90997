//! Input rules shared by the API and the CLI: titles, names, emails. Each failure names the
//! input field it concerns, so the API can answer BAD_USER_INPUT with that field.

/// A rule an input broke: which field, and why, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: String,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Longest title, name or short text accepted.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest request text or answer accepted.
pub const MAX_TEXT_CHARS: usize = 2000;

/// A trimmed, non-empty text of at most `max_chars` characters, with no control characters.
pub fn check_text(field: &str, value: &str, max_chars: usize) -> Result<String, InvalidInput> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidInput::new(
            field,
            format!("{field} must not be empty"),
        ));
    }
    let length = trimmed.chars().count();
    if length > max_chars {
        return Err(InvalidInput::new(
            field,
            format!("{field} is {length} characters long; at most {max_chars} are accepted"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(InvalidInput::new(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// A single-line name: like [`check_text`] but no line breaks either, and no invisible
/// formatting characters (names reach mail headers and lists, where a bidi override or a
/// zero-width character disguises what a person reads).
pub fn check_name(field: &str, value: &str) -> Result<String, InvalidInput> {
    let text = check_text(field, value, MAX_TITLE_CHARS)?;
    if text.contains(['\n', '\r', '\t']) {
        return Err(InvalidInput::new(
            field,
            format!("{field} must fit on one line"),
        ));
    }
    if let Some(found) = text.chars().find(|c| is_disguising_format_character(*c)) {
        return Err(InvalidInput::new(
            field,
            format!(
                "{field} contains an invisible formatting character (U+{:04X}, such as a \
                 direction override or a zero-width space); type the name without it",
                u32::from(found)
            ),
        ));
    }
    if text
        .chars()
        .all(|c| c.is_whitespace() || is_joiner(c) || is_disguising_format_character(c))
    {
        return Err(InvalidInput::new(
            field,
            format!("{field} must contain visible characters"),
        ));
    }
    Ok(text)
}

/// Zero-width joiner and non-joiner: needed inside words of some scripts (Persian, Indic)
/// and emoji sequences, so accepted next to visible characters.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Unicode format characters (category Cf) that change how a name displays without being
/// seen: bidi marks, embeddings, overrides and isolates, zero-width spaces, invisible
/// operators, the byte-order mark, soft hyphen, interlinear annotations.
fn is_disguising_format_character(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// An email address in its plain form (`name@example.fr`), lower-cased domain. Deliberately
/// strict: no display names, comments, quoted parts, spaces or control characters, since the
/// address ends up in mail headers.
pub fn check_email(field: &str, value: &str) -> Result<String, InvalidInput> {
    let email = value.trim();
    let invalid = || InvalidInput::new(field, format!("{email:?} is not a valid email address"));
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !(local_ok && domain_ok) {
        return Err(invalid());
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// Earliest year a date may have.
pub const MIN_DATE_YEAR: i32 = 1900;
/// Latest year a date may have.
pub const MAX_DATE_YEAR: i32 = 9999;

/// A calendar date written exactly `YYYY-MM-DD` (four-digit year in 1900–9999, two-digit month
/// and day, no sign, no spaces), as the API's `Date` scalar and the CLI's `--as-of` accept it.
///
/// # Errors
///
/// A sentence saying what was expected, for any other text or a day the calendar lacks.
pub fn parse_calendar_date(text: &str) -> Result<chrono::NaiveDate, String> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(position, byte)| match position {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
    let shown: String = text.chars().take(40).collect();
    if !shape_ok {
        return Err(format!(
            "{shown:?} is not a date: write it as YYYY-MM-DD, e.g. 2027-01-31"
        ));
    }
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .and_then(|digits| digits.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let year = i32::try_from(number(0..4)).unwrap_or(0);
    if !(MIN_DATE_YEAR..=MAX_DATE_YEAR).contains(&year) {
        return Err(format!(
            "{shown:?} is out of range: the year must be between {MIN_DATE_YEAR} and {MAX_DATE_YEAR}"
        ));
    }
    chrono::NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
        .ok_or_else(|| format!("{shown:?} is not a day of the calendar"))
}

/// Accepts a count of at most `max` things of one kind (`what`, plural) in `field`.
///
/// # Errors
///
/// An [`InvalidInput`] on `field` saying how many were given and how many are accepted.
pub fn check_count(field: &str, what: &str, count: usize, max: usize) -> Result<(), InvalidInput> {
    if count > max {
        return Err(InvalidInput::new(
            field,
            format!("{count} {what} were given; at most {max} are accepted"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(check_text("title", "  TVA  ", 10).expect("ok"), "TVA");
        assert_eq!(
            check_text("title", "   ", 10).expect_err("empty").field,
            "title"
        );
        assert!(check_text("title", &"x".repeat(11), 10).is_err());
        assert!(
            check_text("title", &"é".repeat(10), 10).is_ok(),
            "counts characters"
        );
        assert!(check_text("title", "a\u{0}b", 10).is_err());
        assert!(check_name("name", "a\nb").is_err());
    }

    #[test]
    fn dates_are_exactly_yyyy_mm_dd_with_a_year_in_1900_to_9999() {
        assert_eq!(
            parse_calendar_date("2027-01-31").expect("ok"),
            chrono::NaiveDate::from_ymd_opt(2027, 1, 31).expect("date")
        );
        assert!(parse_calendar_date("1900-01-01").is_ok());
        assert!(parse_calendar_date("9999-12-31").is_ok());
        assert!(parse_calendar_date("2028-02-29").is_ok());
        for bad in [
            "+10000-01-01",
            "-0001-01-01",
            "2026-1-1",
            "1899-12-31",
            "0000-01-01",
            "2027-02-29",
            "2027-13-01",
            "2027-00-10",
            " 2027-01-01",
            "2027-01-01 ",
            "2027/01/01",
            "27-01-01",
            "2027-01-011",
            "２０２７-01-01",
            "",
        ] {
            assert!(parse_calendar_date(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(
            parse_calendar_date("1899-12-31")
                .expect_err("too early")
                .contains("between 1900 and 9999")
        );
    }

    #[test]
    fn names_refuse_invisible_formatting_characters() {
        for bad in [
            "Martin\u{202E}gpj.exe",
            "Mar\u{200B}tin",
            "\u{2066}Martin\u{2069}",
            "\u{FEFF}Martin",
            "\u{200D}\u{200C}",
            "a\tb",
        ] {
            let refused = check_name("name", bad).expect_err(bad);
            assert_eq!(refused.field, "name");
        }
        assert!(check_name("name", "\u{200D}").is_err(), "only a joiner");
        assert_eq!(
            check_name("name", "Boulangerie Martin").expect("plain"),
            "Boulangerie Martin"
        );
        assert!(
            check_name("name", "می\u{200C}خواهم").is_ok(),
            "Persian ZWNJ"
        );
        assert!(
            check_name("name", "שלום עולם").is_ok(),
            "right-to-left script"
        );
    }

    #[test]
    fn counts_above_the_bound_are_refused_on_their_field() {
        assert!(check_count("items", "items", 100, 100).is_ok());
        let refused = check_count("items", "items", 101, 100).expect_err("too many");
        assert_eq!(refused.field, "items");
        assert!(refused.message.contains("at most 100"));
    }

    #[test]
    fn emails_are_plain_addresses_only() {
        assert_eq!(
            check_email("email", "Marie.Martin@Example.FR").expect("ok"),
            "Marie.Martin@example.fr"
        );
        for bad in [
            "",
            "marie",
            "marie@",
            "@example.fr",
            "marie@example",
            "marie martin@example.fr",
            "marie@example..fr",
            "marie@exa\r\nmple.fr",
            "Marie <marie@example.fr>",
            "marie@-example.fr",
            ".marie@example.fr",
        ] {
            assert!(
                check_email("email", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }
}
