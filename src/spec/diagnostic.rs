//! Diagnostics for report authors: `path:line:col: message`, the source line, a caret, a hint.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use unicode_width::UnicodeWidthStr;

/// One problem found in a file, pointing at a byte range of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// Byte range in the file's source; empty ranges point between characters.
    pub span: Range<usize>,
    pub message: String,
    /// Short text printed under the carets.
    pub label: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(path: &Path, span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            span,
            message: message.into(),
            label: None,
            hint: None,
        }
    }

    /// `what` named `name` is defined twice; `first` is the file that defined it first.
    pub fn duplicate(
        path: &Path,
        span: Range<usize>,
        what: &str,
        name: &str,
        first: &Path,
    ) -> Self {
        Self::new(path, span, format!("duplicate {what} name `{name}`")).with_hint(format!(
            "{} already defines it; rename one",
            first.display()
        ))
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(self, hint: Option<String>) -> Self {
        match hint {
            Some(hint) => self.with_hint(hint),
            None => self,
        }
    }

    /// 1-based line and column (in characters) of the span's start.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        line_col(source, self.span.start)
    }

    /// Renders the diagnostic rustc-style:
    ///
    /// ```text
    /// reports/dau.toml:3:1: error: unknown key `titel`
    ///   |
    /// 3 | titel = "DAU"
    ///   | ^^^^^ did you mean `title`?
    ///   = hint: …
    /// ```
    pub fn render(&self, source: &str) -> String {
        let (line_no, col) = self.line_col(source);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}:{}:{}: error: {}",
            self.path.display(),
            line_no,
            col,
            self.message
        );
        let start = self.span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line_text = source[line_start..line_end].trim_end_matches('\r');
        let gutter = line_no.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line_no} | {line_text}");
        let caret_end = self.span.end.clamp(start, line_start + line_text.len());
        let before = UnicodeWidthStr::width(&source[line_start..start]);
        let width = UnicodeWidthStr::width(&source[start..caret_end]).max(1);
        let _ = write!(out, "{pad} | {}{}", " ".repeat(before), "^".repeat(width));
        if let Some(label) = &self.label {
            let _ = write!(out, " {label}");
        }
        out.push('\n');
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out
    }
}

/// 1-based line and column (in characters) of a byte offset.
/// `path:line:col` of byte `offset` in `source`, the file at `path`.
pub fn location(path: &Path, source: &str, offset: usize) -> String {
    let (line, col) = line_col(source, offset);
    format!("{}:{line}:{col}", path.display())
}

pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The closest candidate to `word` (edit distance), if any is close enough to be a
/// plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let candidate = c.to_lowercase();
            let distance = strsim::damerau_levenshtein(&word_lower, &candidate);
            // `percentage` for `percent`, `dau` for `daily_active_users`: one word
            // starting with the other is as plausible as a typo.
            let prefix = word_lower.chars().count() >= 3
                && (candidate.starts_with(&word_lower) || word_lower.starts_with(&candidate));
            (if prefix { distance.min(1) } else { distance }, c)
        })
        .filter(|(distance, c)| *distance <= (c.chars().count().max(3) / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `did you mean `x`?` for the closest candidate, if there is one.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_not_bytes() {
        let source = "title = \"日次\"\nowner = 1\n";
        let offset = source.find("owner").unwrap();
        assert_eq!(line_col(source, offset), (2, 1));
        let offset = source.find('"').unwrap() + 1 + "日次".len();
        assert_eq!(line_col(source, offset), (1, 12));
    }

    #[test]
    fn carets_line_up_under_wide_japanese_text() {
        let source = "title = \"日次レポート\" x\n";
        let start = source.find('x').unwrap();
        let d = Diagnostic::new(Path::new("r.toml"), start..start + 1, "boom");
        let rendered = d.render(source);
        let lines: Vec<&str> = rendered.lines().collect();
        let code_col = lines[2].find('x').unwrap();
        // "日次レポート" is 6 characters but 12 columns wide on a terminal.
        let caret_col = lines[3].find('^').unwrap();
        assert_eq!(
            UnicodeWidthStr::width(&lines[2][..code_col]),
            UnicodeWidthStr::width(&lines[3][..caret_col])
        );
    }

    #[test]
    fn suggestions_only_for_plausible_typos() {
        let keys = ["title", "description", "owner"];
        assert_eq!(closest("titel", keys), Some("title"));
        assert_eq!(closest("descripton", keys), Some("description"));
        assert_eq!(closest("zzzzzz", keys), None);
    }
}
