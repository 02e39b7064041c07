//! A derived metric's expression (`signups / active_users * 100`): parsed into a tree of
//! numbers, input names and `+ - * /`, checked, and written back as SQL over the inputs'
//! values — never spliced into SQL as the text it was written as.

use std::fmt::Write as _;
use std::ops::Range;

/// One operator of the expression language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// A parsed expression. Names carry their byte range in the expression text, so a
/// diagnostic can point at the unknown one.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Name(String, Range<usize>),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

/// Why an expression cannot be read; `at` is a byte range in the expression text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
    pub at: Range<usize>,
}

fn error(message: impl Into<String>, at: Range<usize>) -> ExprError {
    ExprError {
        message: message.into(),
        at,
    }
}

/// The deepest nesting (parentheses and signs) an expression may have: far beyond any
/// real metric, and short of what a recursive reader can take.
pub const MAX_EXPR_DEPTH: usize = 32;
/// The most names and numbers an expression may hold: the tree is walked recursively, so
/// its size is bounded as well as its nesting.
pub const MAX_EXPR_TERMS: usize = 64;

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
    terms: usize,
}

impl Parser<'_> {
    fn skip_blanks(&mut self) {
        while self.text[self.at..].starts_with(char::is_whitespace) {
            self.at += self.text[self.at..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_blanks();
        self.text[self.at..].chars().next()
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.product()?;
        while let Some(c @ ('+' | '-')) = self.peek() {
            self.at += 1;
            let right = self.product()?;
            let op = if c == '+' { Op::Add } else { Op::Sub };
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while let Some(c @ ('*' | '/')) = self.peek() {
            self.at += 1;
            self.skip_blanks();
            let start = self.at;
            let right = self.unary()?;
            if c == '/' && right.constant() == Some(0.0) {
                return Err(error("this divides by zero", start..self.at.max(start + 1)));
            }
            let op = if c == '*' { Op::Mul } else { Op::Div };
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some('-') {
            self.depth += 1;
            if self.depth > MAX_EXPR_DEPTH {
                return Err(error(
                    format!("signs and parentheses nest deeper than {MAX_EXPR_DEPTH}"),
                    self.at..self.at + 1,
                ));
            }
            self.at += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        self.terms += 1;
        if self.terms > MAX_EXPR_TERMS {
            let at = self.at.min(self.text.len());
            return Err(error(
                format!("the expression has more than {MAX_EXPR_TERMS} names and numbers"),
                at..at,
            ));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let Some(c) = self.peek() else {
            return Err(error(
                "the expression ends where a metric name or a number was expected",
                self.text.len()..self.text.len(),
            ));
        };
        let start = self.at;
        if c == '(' {
            self.depth += 1;
            if self.depth > MAX_EXPR_DEPTH {
                return Err(error(
                    format!("signs and parentheses nest deeper than {MAX_EXPR_DEPTH}"),
                    start..start + 1,
                ));
            }
            self.at += 1;
            let inner = self.sum()?;
            if self.peek() != Some(')') {
                return Err(error("this `(` is never closed", start..start + 1));
            }
            self.at += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        if word.is_empty() {
            let width = c.len_utf8();
            return Err(error(
                format!("`{c}` cannot be used here: write metric names, numbers, + - * / and ( )"),
                self.at..self.at + width,
            ));
        }
        let range = self.at..self.at + len;
        self.at += len;
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return word
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Expr::Number)
                .ok_or_else(|| error(format!("`{word}` is not a number"), range));
        }
        if word.contains('.') {
            return Err(error(
                format!("`{word}` is not a metric name (names have no `.`)"),
                range,
            ));
        }
        Ok(Expr::Name(word.to_string(), range))
    }
}

/// Reads `text` as an expression.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let mut parser = Parser {
        text,
        at: 0,
        depth: 0,
        terms: 0,
    };
    let expr = parser.sum()?;
    if let Some(c) = parser.peek() {
        let at = parser.at;
        return Err(error(
            if c == ')' {
                "this `)` has no `(`".to_string()
            } else {
                format!("`{c}` follows a complete expression: an operator is missing")
            },
            at..at + c.len_utf8(),
        ));
    }
    Ok(expr)
}

impl Expr {
    /// The value when no input is named.
    pub fn constant(&self) -> Option<f64> {
        match self {
            Expr::Number(n) => Some(*n),
            Expr::Name(..) => None,
            Expr::Neg(e) => e.constant().map(|v| -v),
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.constant()?, b.constant()?);
                Some(match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                })
            }
        }
    }

    /// Every name, in order of appearance, with its range.
    pub fn names(&self) -> Vec<(&str, Range<usize>)> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'e>(&'e self, out: &mut Vec<(&'e str, Range<usize>)>) {
        match self {
            Expr::Number(_) => {}
            Expr::Name(n, r) => out.push((n, r.clone())),
            Expr::Neg(e) => e.collect_names(out),
            Expr::Binary(_, a, b) => {
                a.collect_names(out);
                b.collect_names(out);
            }
        }
    }

    /// The expression as SQL, each name written by `name` (e.g. `i0.value`); a division
    /// yields NULL where its divisor is 0, so a day without a denominator is a gap.
    pub fn to_sql(&self, name: &impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        self.write_sql(name, &mut out);
        out
    }

    fn write_sql(&self, name: &impl Fn(&str) -> String, out: &mut String) {
        match self {
            // `{:?}` keeps a decimal point, so `1` is written `1.0` and divides as a float.
            Expr::Number(n) => {
                let _ = write!(out, "{n:?}");
            }
            Expr::Name(n, _) => out.push_str(&name(n)),
            Expr::Neg(e) => {
                out.push_str("(-");
                e.write_sql(name, out);
                out.push(')');
            }
            Expr::Binary(op, a, b) => {
                out.push('(');
                a.write_sql(name, out);
                match op {
                    Op::Add => out.push_str(" + "),
                    Op::Sub => out.push_str(" - "),
                    Op::Mul => out.push_str(" * "),
                    Op::Div => out.push_str(" / NULLIF("),
                }
                b.write_sql(name, out);
                if *op == Op::Div {
                    out.push_str(", 0)");
                }
                out.push(')');
            }
        }
    }

    /// The expression's value given each name's value; `None` where a name has no value or
    /// a divisor is 0 (the SQL's NULL).
    pub fn evaluate(&self, value: &impl Fn(&str) -> Option<f64>) -> Option<f64> {
        Some(match self {
            Expr::Number(n) => *n,
            Expr::Name(n, _) => value(n)?,
            Expr::Neg(e) => -e.evaluate(value)?,
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.evaluate(value)?, b.evaluate(value)?);
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div if b == 0.0 => return None,
                    Op::Div => a / b,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn precedence_and_names() {
        let e = parse("signups / active_users * 100 - 1").unwrap();
        let v = |n: &str| match n {
            "signups" => Some(30.0),
            "active_users" => Some(60.0),
            _ => None,
        };
        assert_eq!(e.evaluate(&v), Some(49.0));
        let names: Vec<&str> = e.names().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["signups", "active_users"]);
        assert_eq!(
            parse("-(a - b)").unwrap().evaluate(&|_| Some(2.0)),
            Some(-0.0)
        );
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let cases = [
            ("a / 0", "divides by zero", 4..5),
            ("a / (1 - 1)", "divides by zero", 4..11),
            ("a +", "ends where", 3..3),
            ("(a + b", "never closed", 0..1),
            ("a + b)", "has no `(`", 5..6),
            ("a b", "operator is missing", 2..3),
            ("a; DROP TABLE x", "`;` follows", 1..2),
            ("a + 'x'", "`'` cannot be used", 4..5),
            ("mart.t", "not a metric name", 0..6),
        ];
        let deep = format!("{}a", "-".repeat(50_000));
        assert!(parse(&deep).unwrap_err().message.contains("nest deeper"));
        let long = vec!["a"; 50_000].join("+");
        assert!(parse(&long).unwrap_err().message.contains("more than 64"));
        for (text, message, at) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(message), "{text}: {}", e.message);
            assert_eq!(e.at, at, "{text}");
        }
    }

    #[test]
    fn sql_divides_safely_and_never_copies_the_text() {
        let e = parse("a/b + 2").unwrap();
        assert_eq!(
            e.to_sql(&|n| format!("{n}.value")),
            "((a.value / NULLIF(b.value, 0)) + 2.0)"
        );
    }

    fn arb_expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            "[a-c]".prop_map(String::from),
            (1u32..50).prop_map(|n| n.to_string()),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            (inner.clone(), prop_oneof!["\\+", "-", "\\*", "/"], inner)
                .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
        })
    }

    proptest! {
        /// Whatever is typed, the reader answers (a tree or a located error) and never
        /// panics; a tree's SQL holds only names, numbers and operators.
        #[test]
        fn any_text_is_read_or_refused(text in ".{0,40}") {
            match parse(&text) {
                Ok(e) => {
                    let sql = e.to_sql(&|n| format!("v_{n}"));
                    prop_assert!(!sql.contains(';') && !sql.contains('\''));
                }
                Err(e) => prop_assert!(e.at.end <= text.len() && e.at.start <= e.at.end),
            }
        }

        /// The tree evaluates as the text means: checked against an evaluation written
        /// independently (Rust's own arithmetic on the same fully parenthesised text).
        #[test]
        fn evaluation_matches_arithmetic(text in arb_expr(), a in 1.0f64..9.0, b in 1.0f64..9.0, c in 1.0f64..9.0) {
            let Ok(e) = parse(&text) else { return Ok(()); };
            let got = e.evaluate(&|n| Some(match n { "a" => a, "b" => b, _ => c }));
            let expected = eval_parenthesised(&text, a, b, c);
            match (got, expected) {
                (Some(g), Some(x)) => prop_assert!((g - x).abs() <= 1e-9 * x.abs().max(1.0), "{text}: {g} vs {x}"),
                (g, x) => prop_assert_eq!(g.is_some(), x.is_some(), "{}", text),
            }
        }
    }

    /// An evaluator for the fully parenthesised strings `arb_expr` writes: `(x op y)`.
    fn eval_parenthesised(text: &str, a: f64, b: f64, c: f64) -> Option<f64> {
        fn go(s: &str, a: f64, b: f64, c: f64) -> Option<(f64, &str)> {
            let s = s.trim_start();
            if let Some(rest) = s.strip_prefix('(') {
                let (x, rest) = go(rest, a, b, c)?;
                let rest = rest.trim_start();
                let op = rest.chars().next()?;
                let (y, rest) = go(&rest[1..], a, b, c)?;
                let rest = rest.trim_start().strip_prefix(')')?;
                let v = match op {
                    '+' => x + y,
                    '-' => x - y,
                    '*' => x * y,
                    _ if y == 0.0 => return None,
                    _ => x / y,
                };
                return Some((v, rest));
            }
            let end = s
                .find(|ch: char| !ch.is_ascii_alphanumeric())
                .unwrap_or(s.len());
            let v = match &s[..end] {
                "a" => a,
                "b" => b,
                "c" => c,
                n => n.parse().ok()?,
            };
            Some((v, &s[end..]))
        }
        go(text, a, b, c).map(|(v, _)| v)
    }
}
