//! Pure rules for replies by email: the token in a reply address, the new text above the
//! quoted part of a reply, out-of-office subjects, and the authentication results a trusted
//! mail server wrote. No I/O, no MIME parsing (that is `ops::replies`).

/// The token of `address` when it is `{local}+{token}@{domain}` of the configured reply
/// address (local part and domain compared without case, the token as written, lowercase hex).
pub fn token_in_address<'a>(address: &'a str, local: &str, domain: &str) -> Option<&'a str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local_part, address_domain) = address.rsplit_once('@')?;
    if !address_domain.eq_ignore_ascii_case(domain) {
        return None;
    }
    let (base, token) = local_part.split_once('+')?;
    if !base.eq_ignore_ascii_case(local) {
        return None;
    }
    let token_ok = token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit());
    token_ok.then_some(token)
}

/// The new text of a reply: everything above the first quote marker, trimmed. Markers: a
/// line starting with `>`, an attribution ("Le … a écrit :", "On … wrote:", also when the
/// mail client wrapped it on two lines), Outlook's "-----Original Message-----" /
/// "-----Message d'origine-----" or a line of underscores, a header block ("De :" / "From:"
/// followed by "Envoyé :" / "Sent:" / "À :" / "To:" / "Objet :" / "Subject:"), and the
/// signature delimiter "-- ".
pub fn cut_quote(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (index, line) in lines.iter().enumerate() {
        let next = lines.get(index + 1).copied().unwrap_or("");
        if starts_quote(line, next, &lines[index + 1..]) {
            end = index;
            break;
        }
    }
    let kept = lines[..end].join("\n");
    kept.trim().to_string()
}

fn starts_quote(line: &str, next: &str, rest: &[&str]) -> bool {
    let trimmed = line.trim();
    if line.trim_start().starts_with('>') || line == "-- " {
        return true;
    }
    let lower = trimmed.to_lowercase();
    if lower.starts_with("-----") && (lower.contains("original") || lower.contains("origine")) {
        return true;
    }
    if trimmed.len() >= 20 && trimmed.chars().all(|c| c == '_') {
        return true;
    }
    if is_attribution(trimmed) {
        return true;
    }
    let joined = format!("{trimmed} {}", next.trim());
    if (lower.starts_with("le ") || lower.starts_with("on ")) && is_attribution(&joined) {
        return true;
    }
    if header_name(trimmed, &["de", "from"]) {
        return rest.iter().take(4).any(|line| {
            header_name(
                line.trim(),
                &["envoyé", "sent", "à", "to", "objet", "subject", "date"],
            )
        });
    }
    false
}

/// "Le lun. 4 janv. 2027 à 10:00, Cabinet <x@y> a écrit :" / "On Mon, Jan 4, 2027 at 10:00 AM
/// Cabinet <x@y> wrote:".
fn is_attribution(line: &str) -> bool {
    let lower = line.to_lowercase();
    (lower.starts_with("le ") && (lower.ends_with("a écrit :") || lower.ends_with("a écrit:")))
        || (lower.starts_with("on ") && lower.ends_with("wrote:"))
}

/// Whether `line` starts with one of `names` followed by `:` or ` :`.
fn header_name(line: &str, names: &[&str]) -> bool {
    let lower = line.to_lowercase();
    names.iter().any(|name| {
        lower
            .strip_prefix(name)
            .map(|rest| {
                rest.starts_with(':') || rest.starts_with(" :") || rest.starts_with("\u{a0}:")
            })
            .unwrap_or(false)
    })
}

/// Whether a subject says "I am away" (French or English).
pub fn is_out_of_office_subject(subject: &str) -> bool {
    let lower = subject.to_lowercase();
    [
        "out of office",
        "out of the office",
        "automatic reply",
        "auto-reply",
        "autoreply",
        "auto reply",
        "away from the office",
        "réponse automatique",
        "reponse automatique",
        "absence du bureau",
        "absent du bureau",
        "message d'absence",
        "message d’absence",
        "absent(e)",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
}

/// Whether `Auto-Submitted`, `X-Autoreply`/`X-Autorespond` or `Precedence` say the message
/// was written by a machine (RFC 3834: any `Auto-Submitted` but `no`).
pub fn is_automatic(headers: &[(&str, &str)]) -> bool {
    headers.iter().any(|(name, value)| {
        let value = value.trim().to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "auto-submitted" => value.split(';').next().map(str::trim) != Some("no"),
            "x-autoreply" | "x-autorespond" | "x-autoresponder" => true,
            "precedence" => matches!(value.as_str(), "auto_reply" | "bulk" | "junk" | "list"),
            _ => false,
        }
    })
}

/// What a trusted server said about a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResults {
    pub dmarc: Option<String>,
    pub spf: Option<String>,
    pub dkim: Option<String>,
}

impl AuthResults {
    /// `dmarc=pass spf=pass dkim=pass`, or `none` when nothing trusted was found.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            ("dmarc", &self.dmarc),
            ("spf", &self.spf),
            ("dkim", &self.dkim),
        ]
        .iter()
        .filter_map(|(method, result)| result.as_ref().map(|r| format!("{method}={r}")))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" ")
        }
    }

    /// DMARC failed (never answer automatically).
    pub fn dmarc_failed(&self) -> bool {
        matches!(self.dmarc.as_deref(), Some("fail"))
    }
}

/// The results of the `Authentication-Results` header values (RFC 8601) written by
/// `authserv_id`; others (which anyone can write) are ignored. The first trusted header
/// (the one nearest the top, added last) wins for each method.
pub fn trusted_auth_results(values: &[&str], authserv_id: &str) -> AuthResults {
    let mut results = AuthResults::default();
    if authserv_id.is_empty() {
        return results;
    }
    for value in values {
        let mut fields = value.split(';');
        let Some(id) = fields.next().and_then(|id| id.split_whitespace().next()) else {
            continue;
        };
        if !id.eq_ignore_ascii_case(authserv_id) {
            continue;
        }
        for field in fields {
            let Some((method, rest)) = field.trim().split_once('=') else {
                continue;
            };
            let result = rest
                .split(|c: char| c.is_whitespace() || c == '(')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            let slot = match method.trim().to_ascii_lowercase().as_str() {
                "dmarc" => &mut results.dmarc,
                "spf" => &mut results.spf,
                "dkim" => &mut results.dkim,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(result);
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_reply_address_yields_its_token_and_nothing_else_does() {
        let address = format!("reponses+{TOKEN}@reply.cabinet.fr");
        assert_eq!(
            token_in_address(&address, "reponses", "reply.cabinet.fr"),
            Some(TOKEN)
        );
        assert_eq!(
            token_in_address(
                &format!("<Reponses+{TOKEN}@Reply.Cabinet.fr>"),
                "reponses",
                "reply.cabinet.fr"
            ),
            Some(TOKEN)
        );
        assert_eq!(token_in_address(&address, "reponses", "other.fr"), None);
        assert_eq!(
            token_in_address("reponses@reply.cabinet.fr", "reponses", "reply.cabinet.fr"),
            None
        );
        assert_eq!(
            token_in_address(
                "reponses+short@reply.cabinet.fr",
                "reponses",
                "reply.cabinet.fr"
            ),
            None
        );
        assert_eq!(
            token_in_address(
                &format!("x+{TOKEN}@reply.cabinet.fr"),
                "reponses",
                "reply.cabinet.fr"
            ),
            None
        );
    }

    #[test]
    fn french_and_english_quotes_are_cut() {
        let french = "Voici les factures.\nBonne journée\n\nLe lun. 4 janv. 2027 à 10:00, Cabinet Dupont <r@x.fr> a écrit :\n> Merci de déposer\n> vos éléments";
        assert_eq!(cut_quote(french), "Voici les factures.\nBonne journée");
        let english = "Here they are.\n\nOn Mon, Jan 4, 2027 at 10:00 AM Cabinet <r@x.fr> wrote:\n> Please send";
        assert_eq!(cut_quote(english), "Here they are.");
        let wrapped = "Ci-joint.\n\nLe lun. 4 janv. 2027 à 10:00, Cabinet Dupont <\nr@x.fr> a écrit :\n> texte";
        assert_eq!(cut_quote(wrapped), "Ci-joint.");
    }

    #[test]
    fn outlook_blocks_and_signatures_are_cut() {
        let outlook =
            "Bonjour,\nvoici.\n\n-----Original Message-----\nFrom: Cabinet\nSent: Monday\n";
        assert_eq!(cut_quote(outlook), "Bonjour,\nvoici.");
        let french_outlook = "Voici.\n\nDe : Cabinet Dupont <r@x.fr>\nEnvoyé : lundi 4 janvier 2027 10:00\nÀ : moi\nObjet : Factures\n\nMerci de déposer";
        assert_eq!(cut_quote(french_outlook), "Voici.");
        let underscores = "OK\n________________________________\nDe : Cabinet";
        assert_eq!(cut_quote(underscores), "OK");
        let signature = "Voici.\n-- \nJean Martin\n06 00 00 00 00";
        assert_eq!(cut_quote(signature), "Voici.");
        assert_eq!(
            cut_quote("De: rien à signaler, merci"),
            "De: rien à signaler, merci"
        );
        assert_eq!(cut_quote("Just text"), "Just text");
    }

    #[test]
    fn automatic_messages_are_recognised() {
        assert!(is_automatic(&[("Auto-Submitted", "auto-replied")]));
        assert!(!is_automatic(&[("Auto-Submitted", "no")]));
        assert!(is_automatic(&[("X-Autoreply", "yes")]));
        assert!(is_automatic(&[("Precedence", "bulk")]));
        assert!(!is_automatic(&[("Subject", "x")]));
        assert!(is_out_of_office_subject("Réponse automatique : Factures"));
        assert!(is_out_of_office_subject("Out of Office: Invoices"));
        assert!(!is_out_of_office_subject("Re: Factures de janvier"));
    }

    #[test]
    fn only_the_trusted_servers_results_count() {
        let headers = [
            "mx.cabinet.fr; dkim=pass header.d=client.fr; spf=pass smtp.mailfrom=client.fr; dmarc=fail (p=reject) header.from=client.fr",
            "evil.example; dmarc=pass",
        ];
        let results = trusted_auth_results(&headers, "mx.cabinet.fr");
        assert!(results.dmarc_failed());
        assert_eq!(results.summary(), "dmarc=fail spf=pass dkim=pass");
        let forged = trusted_auth_results(&headers[1..], "mx.cabinet.fr");
        assert_eq!(forged, AuthResults::default());
        assert_eq!(forged.summary(), "none");
        assert_eq!(trusted_auth_results(&headers, ""), AuthResults::default());
    }
}
