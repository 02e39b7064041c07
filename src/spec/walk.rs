//! The general part of reading a spec: walking a TOML document with every key's span kept,
//! checking keys and types, and collecting every problem as a [`Diagnostic`] instead of
//! stopping at the first. Each section's own rules live beside its types.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::alias::{self as names, Alias};
use super::diagnostic::{Diagnostic, closest, did_you_mean};

pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
    pub(super) source: &'a str,
    pub(super) errors: Vec<Diagnostic>,
    /// Full key names already suggested for a misspelled key: not reported missing too.
    pub(super) suggested: Vec<String>,
    /// The warehouse's SQL dialect, for reading the SQL.
    pub(super) dialect: crate::warehouse::Dialect,
}

/// A table and where to point when something is missing from it.
pub(super) struct Tbl<'t, 'i> {
    pub(super) table: &'t DeTable<'i>,
    pub(super) name: String,
    pub(super) anchor: Range<usize>,
}

/// A plain SQL identifier: ASCII letters, digits and `_`, not starting with a digit.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl<'a> Reader<'a> {
    pub(super) fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.errors.push(Diagnostic::new(self.path, span, message));
        self.errors.last_mut().expect("just pushed")
    }

    pub(super) fn key_name(&self, table: &Tbl, key: &str) -> String {
        if table.name.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", table.name)
        }
    }

    pub(super) fn check_keys(&mut self, table: &Tbl, allowed: &[&str]) {
        for (key, _) in table.table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let name = self.key_name(table, key.get_ref());
                let suggestion = closest(key.get_ref(), allowed.iter().copied());
                if let Some(suggestion) = suggestion {
                    self.suggested.push(self.key_name(table, suggestion));
                }
                let hint = suggestion.map_or_else(
                    || format!("valid keys here: {}", allowed.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                let d = self.error(key.span(), format!("unknown key `{name}`"));
                *d = d.clone().with_label(hint);
            }
        }
    }

    pub(super) fn lookup<'t, 'i>(
        table: &'t Tbl<'t, 'i>,
        key: &str,
    ) -> Option<&'t Spanned<DeValue<'i>>> {
        table
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    pub(super) fn missing(&mut self, table: &Tbl, key: &str, expected: &str) {
        let name = self.key_name(table, key);
        if self.suggested.contains(&name) {
            return;
        }
        let where_ = if table.name.is_empty() {
            "the report".to_string()
        } else {
            format!("[{}]", table.name)
        };
        let d = self.error(
            table.anchor.clone(),
            format!("missing required key `{name}` ({expected})"),
        );
        *d = d.clone().with_hint(format!("add `{key} = …` to {where_}"));
    }

    pub(super) fn wrong_type(
        &mut self,
        table: &Tbl,
        key: &str,
        value: &Spanned<DeValue>,
        expected: &str,
    ) {
        let name = self.key_name(table, key);
        let found = value.get_ref().type_str();
        self.error(
            value.span(),
            format!("`{name}` must be {expected}, found {found}"),
        );
    }

    pub(super) fn string(
        &mut self,
        table: &Tbl,
        key: &str,
        required: bool,
    ) -> Option<Spanned<String>> {
        let Some(value) = Self::lookup(table, key) else {
            if required {
                self.missing(table, key, "a string");
            }
            return None;
        };
        match value.get_ref().as_str() {
            Some(s) => Some(Spanned::new(value.span(), s.to_string())),
            None => {
                self.wrong_type(table, key, value, "a string");
                None
            }
        }
    }

    /// An optional list of strings; `Some(vec![])` when absent, `None` when invalid.
    pub(super) fn string_list(&mut self, table: &Tbl, key: &str) -> Option<Vec<String>> {
        let items = self.spanned_string_list(table, key)?;
        Some(items.into_iter().map(Spanned::into_inner).collect())
    }

    /// [`Self::string_list`] with where each string is written.
    pub(super) fn spanned_string_list(
        &mut self,
        table: &Tbl,
        key: &str,
    ) -> Option<Vec<Spanned<String>>> {
        let Some(value) = Self::lookup(table, key) else {
            return Some(Vec::new());
        };
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(table, key, value, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref().as_str() {
                Some(s) => out.push(Spanned::new(item.span(), s.to_string())),
                None => {
                    self.wrong_type(table, key, item, "a list of strings");
                    return None;
                }
            }
        }
        Some(out)
    }

    /// `aliases = ["アクティブユーザー", "DAU"]`: the names people use besides the id.
    pub(super) fn aliases(&mut self, table: &Tbl) -> Option<Vec<Alias>> {
        let items = self.spanned_string_list(table, "aliases")?;
        let mut out = Vec::new();
        for item in items {
            if names::normalize(item.get_ref()).is_empty() {
                self.error(item.span(), "an alias cannot be empty").hint =
                    Some("write the name people type, e.g. `\"アクティブユーザー\"`".into());
                return None;
            }
            out.push(Alias {
                span: item.span(),
                text: item.into_inner(),
            });
        }
        Some(out)
    }

    pub(super) fn table<'t, 'i>(
        &mut self,
        parent: &Tbl<'t, 'i>,
        key: &str,
        required: bool,
    ) -> Option<Tbl<'t, 'i>> {
        let entry = parent
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key);
        let Some((k, value)) = entry else {
            if required {
                let d = self.error(
                    parent.anchor.clone(),
                    format!("missing required table `[{}]`", self.key_name(parent, key)),
                );
                *d = d.clone().with_hint(format!("add a `[{key}]` section"));
            }
            return None;
        };
        match value.get_ref().as_table() {
            Some(table) => Some(Tbl {
                table,
                name: self.key_name(parent, key),
                anchor: k.span(),
            }),
            None => {
                self.wrong_type(parent, key, value, "a table");
                None
            }
        }
    }

    pub(super) fn timezone(&mut self, value: &Spanned<String>) -> Option<Tz> {
        match Tz::from_str(value.get_ref()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = match value.get_ref().to_uppercase().as_str() {
                    "JST" => "abbreviations are ambiguous; write `Asia/Tokyo`".to_string(),
                    "KST" => "abbreviations are ambiguous; write `Asia/Seoul`".to_string(),
                    _ => {
                        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
                        did_you_mean(value.get_ref(), names).unwrap_or_else(|| {
                            "use an IANA name such as `Asia/Tokyo` or `UTC`".into()
                        })
                    }
                };
                let d = self.error(
                    value.span(),
                    format!("unknown timezone `{}`", value.get_ref()),
                );
                *d = d.clone().with_label(hint);
                None
            }
        }
    }

    /// An optional `true`/`false`; `None` (reported) when it is something else.
    pub(super) fn flag(&mut self, table: &Tbl, key: &str, default: bool) -> Option<bool> {
        let Some(value) = Self::lookup(table, key) else {
            return Some(default);
        };
        let flag = value.get_ref().as_bool();
        if flag.is_none() {
            self.wrong_type(table, key, value, "true or false");
        }
        flag
    }

    pub(super) fn whole_number(
        &mut self,
        table: &Tbl,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        expected: &str,
    ) -> Option<Option<u64>> {
        let Some(value) = Self::lookup(table, key) else {
            return Some(None);
        };
        let whole = value.get_ref().as_integer();
        let number = whole
            .and_then(|i| i.as_str().parse::<u64>().ok())
            .filter(|n| range.contains(n));
        match (number, whole) {
            (Some(_), _) => {}
            // A whole number out of range: say which number, not just its type.
            (None, Some(written)) => {
                let name = self.key_name(table, key);
                self.error(
                    value.span(),
                    format!("`{name}` must be {expected}, not {}", written.as_str()),
                );
            }
            (None, None) => self.wrong_type(table, key, value, expected),
        }
        number.map(Some)
    }

    /// A string value that must be one of `names`.
    pub(super) fn choice<T>(
        &mut self,
        table: &Tbl,
        key: &str,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
        default: Option<T>,
    ) -> Option<T> {
        let Some(value) = self.string(table, key, default.is_none()) else {
            return if Self::lookup(table, key).is_some() {
                None
            } else {
                default
            };
        };
        if let Some(parsed) = parse(value.get_ref()) {
            return Some(parsed);
        }
        let label = did_you_mean(value.get_ref(), names.iter().copied())
            .unwrap_or_else(|| format!("expected one of: {}", names.join(", ")));
        let name = self.key_name(table, key);
        let d = self.error(
            value.span(),
            format!("`{}` is not a valid `{name}`", value.get_ref()),
        );
        *d = d.clone().with_label(label);
        None
    }

    /// A `[[key]]` list of tables, each read by `each`; `Some(empty)` when absent.
    pub(super) fn array_of_tables<T>(
        &mut self,
        root: &Tbl,
        key_name: &str,
        hint: &str,
        mut each: impl FnMut(&mut Self, &Tbl) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some((key, value)) = root
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key_name)
        else {
            return Some(Vec::new());
        };
        let Some(entries) = value.get_ref().as_array() else {
            let d = self.error(
                value.span(),
                format!("`{key_name}` must be a list of `[[{key_name}]]` tables"),
            );
            *d = d.clone().with_hint(hint);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (index, entry) in entries.iter().enumerate() {
            let Some(table) = entry.get_ref().as_table() else {
                self.error(
                    entry.span(),
                    format!("{key_name} #{} must be a table", index + 1),
                );
                ok = false;
                continue;
            };
            let anchor = if entry.span().is_empty() {
                key.span()
            } else {
                entry.span()
            };
            let t = Tbl {
                table,
                name: format!("{key_name}[{index}]"),
                anchor,
            };
            match each(self, &t) {
                Some(item) => out.push(item),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Where the characters of a string value start in the file, when the file spells them
/// one-to-one (no escape sequences), so a byte offset in the value is the same offset in
/// the file from there.
pub(super) fn string_content_offset(
    source: &str,
    span: Range<usize>,
    value: &str,
) -> Option<usize> {
    let raw = source.get(span.clone())?;
    let (open, multiline) = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        (3, true)
    } else {
        (1, false)
    };
    let mut start = span.start + open;
    if multiline {
        if source[start..].starts_with("\r\n") {
            start += 2;
        } else if source[start..].starts_with('\n') {
            start += 1;
        }
    }
    (source.get(start..start + value.len()) == Some(value)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_offset_of_multiline_and_plain_strings() {
        let source = "sql = \"\"\"\nSELECT 1\n\"\"\"\nx = 'a b'\n";
        let span = source.find("\"\"\"").unwrap()..source.rfind("\"\"\"").unwrap() + 3;
        let start = string_content_offset(source, span, "SELECT 1\n").unwrap();
        assert_eq!(&source[start..start + 6], "SELECT");
        let span = source.find("'a").unwrap()..source.find("b'").unwrap() + 2;
        let start = string_content_offset(source, span, "a b").unwrap();
        assert_eq!(&source[start..start + 3], "a b");
    }

    #[test]
    fn escaped_strings_have_no_one_to_one_offset() {
        let source = "sql = \"a\\tb\"";
        let span = 6..source.len();
        assert_eq!(string_content_offset(source, span, "a\tb"), None);
    }
}
