//! Connection strings as logs and `config --check` show them: every password hidden, in
//! a PostgreSQL URL and in libpq's keyword form alike.

/// What a hidden password prints as.
const HIDDEN: &str = "***";

/// The connection string for logs, `config --check` and `ledger copy`, every password
/// replaced by `***`: in a URL (`postgres://user:PASSWORD@host/db`, any
/// `password=`/`sslpassword=` parameter, any case) and in libpq's keyword form
/// (`host=db password = 's3 cret' dbname=x`). Where the text cannot be read as either,
/// more is hidden, never less.
pub fn redact(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        redact_url(url)
    } else {
        redact_keywords(url)
    }
}

/// A URL: the authority's password up to the last `@` (tokio-postgres stops at the first,
/// but a password with a raw `@` in it must not half show), then every `…password=` value.
fn redact_url(url: &str) -> String {
    let rest_at = url.find("://").map_or(0, |i| i + 3);
    let mut shown = url.to_string();
    let rest = &url[rest_at..];
    if let Some(first_at) = rest.find('@')
        && let Some(colon) = rest[..first_at].find(':')
    {
        let last_at = rest.rfind('@').unwrap_or(first_at);
        shown.replace_range(rest_at + colon + 1..rest_at + last_at, HIDDEN);
    }
    // ASCII lowercasing keeps every byte offset.
    let mut from = rest_at;
    while let Some(found) = shown.to_ascii_lowercase()[from..].find("password=") {
        let value = from + found + "password=".len();
        let end = shown[value..].find('&').map_or(shown.len(), |i| value + i);
        shown.replace_range(value..end, HIDDEN);
        from = value + HIDDEN.len();
    }
    shown
}

/// libpq's keyword form, read as libpq reads it: `key = value` pairs, a value either
/// quoted (`'…'`, with `\'` and `\\`) or up to the next space (with `\` escapes). A
/// password's value (quotes and all) is hidden; past a key with no `=`, all is hidden.
fn redact_keywords(text: &str) -> String {
    let bytes = text.as_bytes();
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut shown = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = skip_spaces(0);
    while i < bytes.len() {
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = text[key_start..i].to_ascii_lowercase();
        i = skip_spaces(i);
        if bytes.get(i) != Some(&b'=') {
            // Not a connection string libpq accepts: nothing after this point is shown.
            shown.push_str(&text[copied..key_start]);
            shown.push_str(HIDDEN);
            return shown;
        }
        let value_start = skip_spaces(i + 1);
        let mut end = value_start;
        if bytes.get(end) == Some(&b'\'') {
            end += 1;
            while end < bytes.len() && bytes[end] != b'\'' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            end = (end + 1).min(bytes.len());
        } else {
            while end < bytes.len() && !bytes[end].is_ascii_whitespace() {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            end = end.min(bytes.len());
        }
        if key.ends_with("password") {
            shown.push_str(&text[copied..value_start]);
            shown.push_str(HIDDEN);
            copied = end;
        }
        i = skip_spaces(end);
    }
    shown.push_str(&text[copied..]);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgres://kpibot:s3cret@db:5432/kpibot?sslmode=require"),
            "postgres://kpibot:***@db:5432/kpibot?sslmode=require"
        );
        assert_eq!(
            redact("postgres://kpibot@/kpibot?host=/cloudsql/p:r:i&password=s3cret"),
            "postgres://kpibot@/kpibot?host=/cloudsql/p:r:i&password=***"
        );
    }

    #[test]
    fn passwords_in_keyword_connection_strings_never_reach_the_logs() {
        assert_eq!(
            redact("host=db user=k password = s3cret dbname=x"),
            "host=db user=k password = *** dbname=x"
        );
        assert_eq!(
            redact("host=db password='s3 cret' dbname=x"),
            "host=db password=*** dbname=x"
        );
        assert_eq!(
            redact(r"password='it\'s \\ here' host=db"),
            "password=*** host=db"
        );
        // An unfinished quote hides everything after it.
        assert_eq!(redact("host=db password='s3 cret"), "host=db password=***");
    }

    #[test]
    fn every_password_in_a_url_is_hidden() {
        assert_eq!(
            redact("postgresql://kpibot:p%40ss@db/kpibot?PassWord=two&password=three"),
            "postgresql://kpibot:***@db/kpibot?PassWord=***&password=***"
        );
        assert_eq!(
            redact("postgres://kpibot:p@ss@db/kpibot"),
            "postgres://kpibot:***@db/kpibot"
        );
    }

    proptest::proptest! {
        #[test]
        fn no_password_survives_redaction_in_either_form(
            password in "[ -~]{6,24}",
            before in proptest::sample::select(vec!["", "host=db ", "host = db user=kpibot "]),
            after in proptest::sample::select(vec!["", " dbname=kpibot", " sslmode=require"]),
        ) {
            // libpq's keyword form: quoted, with `\` and `'` escaped.
            let quoted = format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"));
            let keyword = format!("{before}password = {quoted}{after}");
            let shown = redact(&keyword);
            proptest::prop_assert!(!shown.contains(&password), "{}", shown);
            proptest::prop_assert!(!shown.contains(&quoted), "{}", shown);
            // A URL: the password percent-encoded, in the authority or as a parameter.
            let encoded: String = form_urlencoded::byte_serialize(password.as_bytes()).collect();
            for url in [
                format!("postgres://kpibot:{encoded}@db:5432/kpibot?sslmode=require"),
                format!("postgres://kpibot@/kpibot?host=/cloudsql/p:r:i&password={encoded}"),
            ] {
                let shown = redact(&url);
                proptest::prop_assert!(!shown.contains(&encoded), "{}", shown);
                proptest::prop_assert!(!shown.contains(&password), "{}", shown);
            }
        }
    }
}
