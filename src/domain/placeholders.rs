//! Placeholders in request texts and task titles (`{mois}`, `{trimestre}`, `{echeance}`, and
//! their English names), and the period label of an occurrence ("janvier 2027", "T1 2027",
//! "2027"). Pure functions: a service's texts are checked when it is saved, and rendered once
//! when an occurrence is created, in the firm's language.
//!
//! Never here: I/O, or rendering anything that is not a known placeholder (an unknown one is
//! refused at save time; text without braces is left exactly as written).

use chrono::{Datelike, Months, NaiveDate};

use super::Language;
use super::schedule::Frequency;

/// Every placeholder a text may name, French first then English.
pub const PLACEHOLDERS: [&str; 10] = [
    "mois",
    "mois_precedent",
    "trimestre",
    "annee",
    "echeance",
    "month",
    "previous_month",
    "quarter",
    "year",
    "due_date",
];

const FRENCH_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The `{name}` spans of a text, in order: (byte range, name). A name is ASCII letters,
/// digits and `_`; braces around anything else (`{ }`, `{é}`) are plain text.
fn spans(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('{').map(|at| rest + at) {
        let after = open + 1;
        let name_len = text[after..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let close = after + name_len;
        if name_len > 0 && text.as_bytes().get(close) == Some(&b'}') {
            found.push((open..close + 1, &text[after..close]));
            rest = close + 1;
        } else {
            rest = after;
        }
    }
    found
}

/// Checks that every `{name}` in `text` is a known placeholder; Err names the first unknown
/// one and lists the known ones.
pub fn check(text: &str) -> Result<(), String> {
    match spans(text)
        .into_iter()
        .find(|(_, name)| !PLACEHOLDERS.contains(name))
    {
        None => Ok(()),
        Some((_, name)) => Err(format!(
            "unknown placeholder {{{name}}}; known ones: {}",
            PLACEHOLDERS
                .iter()
                .map(|known| format!("{{{known}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A month and its year: "janvier 2027" / "January 2027".
pub fn month_label(date: NaiveDate, language: Language) -> String {
    let month = date.month0() as usize;
    match language {
        Language::French => format!("{} {}", FRENCH_MONTHS[month], date.year()),
        Language::English => format!("{} {}", ENGLISH_MONTHS[month], date.year()),
    }
}

/// A quarter and its year: "T1 2027" / "Q1 2027".
pub fn quarter_label(date: NaiveDate, language: Language) -> String {
    let quarter = date.month0() / 3 + 1;
    match language {
        Language::French => format!("T{quarter} {}", date.year()),
        Language::English => format!("Q{quarter} {}", date.year()),
    }
}

/// A date spelled out: "30 janvier 2027" ("1er" for the first) / "January 30, 2027".
pub fn long_date(date: NaiveDate, language: Language) -> String {
    let month = date.month0() as usize;
    match language {
        Language::French if date.day() == 1 => {
            format!("1er {} {}", FRENCH_MONTHS[month], date.year())
        }
        Language::French => format!("{} {} {}", date.day(), FRENCH_MONTHS[month], date.year()),
        Language::English => format!("{} {}, {}", ENGLISH_MONTHS[month], date.day(), date.year()),
    }
}

/// The period an occurrence due on `due_date` covers, by its line's frequency: the month for
/// monthly and shorter periods (and single or custom ones), the quarter for quarterly, the
/// half-year for semiannual ("S1 2027" / "H1 2027"), the year for annual.
pub fn period_label(due_date: NaiveDate, frequency: Frequency, language: Language) -> String {
    match frequency {
        Frequency::Quarterly => quarter_label(due_date, language),
        Frequency::Semiannual => {
            let half = due_date.month0() / 6 + 1;
            match language {
                Language::French => format!("S{half} {}", due_date.year()),
                Language::English => format!("H{half} {}", due_date.year()),
            }
        }
        Frequency::Annual => due_date.year().to_string(),
        _ => month_label(due_date, language),
    }
}

/// The value of one known placeholder for an occurrence due on `due_date`.
fn value(name: &str, due_date: NaiveDate, language: Language) -> Option<String> {
    Some(match name {
        "mois" | "month" => month_label(due_date, language),
        "mois_precedent" | "previous_month" => month_label(
            due_date
                .checked_sub_months(Months::new(1))
                .unwrap_or(due_date),
            language,
        ),
        "trimestre" | "quarter" => quarter_label(due_date, language),
        "annee" | "year" => due_date.year().to_string(),
        "echeance" | "due_date" => long_date(due_date, language),
        _ => return None,
    })
}

/// `text` with every known placeholder replaced for an occurrence due on `due_date`, in
/// `language`. Unknown names (refused at save time) are left as written.
pub fn render(text: &str, due_date: NaiveDate, language: Language) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    for (range, name) in spans(text) {
        if let Some(value) = value(name, due_date, language) {
            out.push_str(&text[copied..range.start]);
            out.push_str(&value);
            copied = range.end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
    }

    #[test]
    fn french_placeholders_render_the_period_in_french() {
        let text = "Vos éléments de {mois} ({mois_precedent}, {trimestre}, {annee}), au plus tard le {echeance}";
        assert_eq!(
            render(text, date(2027, 1, 30), Language::French),
            "Vos éléments de janvier 2027 (décembre 2026, T1 2027, 2027), au plus tard le 30 janvier 2027"
        );
    }

    #[test]
    fn english_placeholders_render_the_period_in_english() {
        let text = "Your {month} documents ({previous_month}, {quarter}, {year}) by {due_date}";
        assert_eq!(
            render(text, date(2027, 4, 1), Language::English),
            "Your April 2027 documents (March 2027, Q2 2027, 2027) by April 1, 2027"
        );
    }

    #[test]
    fn either_language_names_render_in_the_firms_language() {
        assert_eq!(
            render("{month} / {echeance}", date(2027, 3, 1), Language::French),
            "mars 2027 / 1er mars 2027"
        );
    }

    #[test]
    fn text_without_known_placeholders_is_left_exactly_as_written() {
        for text in [
            "Relevés { bancaires }",
            "{é}",
            "{",
            "}{",
            "a {unknown} b",
            "",
        ] {
            assert_eq!(render(text, date(2027, 1, 1), Language::French), text);
        }
    }

    #[test]
    fn unknown_placeholders_are_refused_by_name() {
        assert!(check("Vos relevés de {mois}").is_ok());
        assert!(check("Accolades { libres }").is_ok());
        let error = check("Vos relevés de {moiss} et {mois}").expect_err("refused");
        assert!(error.contains("{moiss}"), "{error}");
        assert!(check("{Mois}").is_err());
    }

    #[test]
    fn period_labels_follow_the_lines_frequency() {
        let due = date(2027, 8, 31);
        assert_eq!(
            period_label(due, Frequency::Monthly, Language::French),
            "août 2027"
        );
        assert_eq!(
            period_label(due, Frequency::Quarterly, Language::French),
            "T3 2027"
        );
        assert_eq!(
            period_label(due, Frequency::Quarterly, Language::English),
            "Q3 2027"
        );
        assert_eq!(
            period_label(due, Frequency::Semiannual, Language::English),
            "H2 2027"
        );
        assert_eq!(
            period_label(due, Frequency::Annual, Language::French),
            "2027"
        );
    }

    #[test]
    fn the_previous_month_of_january_is_december_of_the_year_before() {
        assert_eq!(
            render("{previous_month}", date(2027, 1, 31), Language::English),
            "December 2026"
        );
    }
}
