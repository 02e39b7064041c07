//! Named query parameters in report SQL (`@start_date`): finding them outside strings and
//! comments, and spelling them the way each warehouse binds them.

use std::ops::Range;

/// A `@name` parameter marker and where it sits in the SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRef {
    pub name: String,
    /// Byte range of `@name` in the SQL text, `@` included.
    pub span: Range<usize>,
}

/// Which bytes of `sql` are SQL code: `false` inside string literals, quoted identifiers
/// and comments.
pub fn code_mask(sql: &str) -> Vec<bool> {
    let bytes = sql.as_bytes();
    let mut mask = vec![false; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => i = skip_quoted(bytes, i, quote),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            _ => {
                mask[i] = true;
                i += 1;
            }
        }
    }
    mask
}

/// Every `@name` marker in `sql` that is real SQL: markers inside string literals, quoted
/// identifiers and comments are not parameters, and `@@system_variables` are skipped.
pub fn parameters(sql: &str) -> Vec<ParamRef> {
    let bytes = sql.as_bytes();
    let code = code_mask(sql);
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !code[i] || bytes[i] != b'@' {
            i += 1;
            continue;
        }
        let system = bytes.get(i + 1) == Some(&b'@');
        let start = i;
        i += if system { 2 } else { 1 };
        while i < bytes.len() && is_ident_byte(bytes[i]) {
            i += 1;
        }
        if !system && i > start + 1 {
            found.push(ParamRef {
                name: sql[start + 1..i].to_string(),
                span: start..i,
            });
        }
    }
    found
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Index just past the closing quote (a doubled quote is an escaped one).
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && quote != b'"' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Rewrites `@name` markers as `$name`, DuckDB's named-parameter spelling. Only the markers
/// change; values are bound separately and never become SQL text.
pub fn with_dollar_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for param in parameters(sql) {
        out.push_str(&sql[last..param.span.start]);
        out.push('$');
        out.push_str(&param.name);
        last = param.span.end;
    }
    out.push_str(&sql[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        parameters(sql).into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn finds_parameters_in_sql_but_not_in_strings_or_comments() {
        let sql = "SELECT '@not_me', \"@col\" -- @comment\nFROM t /* @block */ WHERE d BETWEEN @start_date AND @end_date AND x = 'it''s @no' AND y = @@version";
        assert_eq!(names(sql), vec!["start_date", "end_date"]);
    }

    #[test]
    fn spans_point_at_the_marker() {
        let sql = "WHERE d >= @start_date";
        let p = &parameters(sql)[0];
        assert_eq!(&sql[p.span.clone()], "@start_date");
    }

    #[test]
    fn rewrites_only_the_markers() {
        let sql = "SELECT '@keep' WHERE d = @run_date -- @keep\n";
        assert_eq!(
            with_dollar_parameters(sql),
            "SELECT '@keep' WHERE d = $run_date -- @keep\n"
        );
    }
}
