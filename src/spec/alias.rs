//! The names people use for reports, metrics and dimensions besides their ids
//! (`aliases`), and how `/kpi` compares any name: the same after [`normalize`].

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;

/// A name for an entry besides its id, and where the spec writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub text: String,
    pub span: Range<usize>,
}

/// A name as `/kpi` compares it: NFKC (full-width letters and digits as ASCII, half-width
/// katakana as full-width), lower case, runs of blanks as one space, trimmed.
pub fn normalize(text: &str) -> String {
    fold(text).to_lowercase()
}

/// [`normalize`] keeping the case: what to show of a word the way it was typed.
pub fn fold(text: &str) -> String {
    let folded: String = text.nfkc().collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_across_widths_and_case() {
        assert_eq!(normalize("ＤＡＵ"), "dau");
        assert_eq!(normalize("  Active\u{3000}Users "), "active users");
        assert_eq!(normalize("ｱｸﾃｨﾌﾞ"), "アクティブ");
        assert_eq!(normalize("（先週）"), "(先週)");
    }
}
