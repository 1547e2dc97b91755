//! Go's `regexp` (RE2) syntax on Rust's regex crates: which patterns Istio's webhook accepts
//! (C-21), by rewriting Go's syntax into Rust's and refusing what Go refuses.

/// Longest regex Istio accepts (a stand-in for Envoy's RE2 program size).
const REGEX_MAX: usize = 1024;
/// Go's `regexp/syntax` limit on `{n,m}` counts.
const REGEX_MAX_REPEAT: u32 = 1000;
/// Go's `regexp/syntax` limit on nesting depth.
const REGEX_MAX_NEST: u32 = 1000;
/// Compiled-size budget standing in for Go's "expression too large".
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// The parts of Go's `regexp/syntax` that Rust's parser is more lenient about: stacked
/// repetition operators (`a**`, `a*+`), counts above 1000, and flags Go does not know.
struct GoSyntax;

impl regex_syntax::ast::Visitor for GoSyntax {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &regex_syntax::ast::Ast) -> Result<(), String> {
        use regex_syntax::ast::{Ast, GroupKind, RepetitionKind, RepetitionRange};
        match ast {
            Ast::Repetition(rep) => {
                if matches!(*rep.ast, Ast::Repetition(_)) {
                    return Err("invalid nested repetition operator".to_owned());
                }
                if let RepetitionKind::Range(range) = &rep.op.kind {
                    let too_big = match *range {
                        RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n) => {
                            n > REGEX_MAX_REPEAT
                        }
                        RepetitionRange::Bounded(m, n) => {
                            m > REGEX_MAX_REPEAT || n > REGEX_MAX_REPEAT
                        }
                    };
                    if too_big {
                        return Err("invalid repeat count".to_owned());
                    }
                    let (min, max) = match *range {
                        RepetitionRange::Exactly(n) => (n, Some(n)),
                        RepetitionRange::AtLeast(n) => (n, None),
                        RepetitionRange::Bounded(m, n) => (m, Some(n)),
                    };
                    if (min >= 2 || max.is_some_and(|m| m >= 2))
                        && !repeat_is_valid(ast, REGEX_MAX_REPEAT)
                    {
                        return Err("invalid repeat count".to_owned());
                    }
                }
                Ok(())
            }
            Ast::Flags(set) => go_flags(&set.flags),
            Ast::Group(group) => match &group.kind {
                GroupKind::NonCapturing(flags) => go_flags(flags),
                GroupKind::CaptureIndex(_) | GroupKind::CaptureName { .. } => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Go's `repeatIsValid`: counted repetitions nested in one another multiply, and the product
/// may not exceed `n` copies of the innermost expression (`(a{100}){100}` is refused). Besides
/// following Go, this keeps hostile patterns cheap: `(\w{777}){777}` took seconds to compile.
fn repeat_is_valid(ast: &regex_syntax::ast::Ast, mut n: u32) -> bool {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    match ast {
        Ast::Repetition(rep) => {
            if let RepetitionKind::Range(range) = &rep.op.kind {
                let m = match *range {
                    RepetitionRange::Exactly(0) | RepetitionRange::Bounded(_, 0) => return true,
                    RepetitionRange::Exactly(m)
                    | RepetitionRange::AtLeast(m)
                    | RepetitionRange::Bounded(_, m) => m,
                };
                if m > n {
                    return false;
                }
                // `{0,}` (m = 0) leaves the budget as it is.
                n = n.checked_div(m).unwrap_or(n);
            }
            repeat_is_valid(&rep.ast, n)
        }
        Ast::Group(group) => repeat_is_valid(&group.ast, n),
        Ast::Alternation(alt) => alt.asts.iter().all(|a| repeat_is_valid(a, n)),
        Ast::Concat(concat) => concat.asts.iter().all(|a| repeat_is_valid(a, n)),
        _ => true,
    }
}

/// Go knows the flags `i`, `m`, `s` and `U` only.
fn go_flags(flags: &regex_syntax::ast::Flags) -> Result<(), String> {
    use regex_syntax::ast::{Flag, FlagsItemKind};
    for item in &flags.items {
        if let FlagsItemKind::Flag(flag) = &item.kind
            && !matches!(
                flag,
                Flag::CaseInsensitive | Flag::MultiLine | Flag::DotMatchesNewLine | Flag::SwapGreed
            )
        {
            return Err("invalid or unsupported Perl syntax".to_owned());
        }
    }
    Ok(())
}

/// Whether `{` at the start of `rest` opens a repetition as Go reads it (`{n}`, `{n,}`,
/// `{n,m}`); anything else is a literal brace in Go, an error in Rust.
fn is_go_repeat(rest: &str) -> bool {
    let Some(body) = rest.strip_prefix('{') else {
        return false;
    };
    let Some(end) = body.find('}') else {
        return false;
    };
    let inner = body.get(..end).unwrap_or_default();
    let (min, max) = match inner.split_once(',') {
        Some((min, max)) => (min, Some(max)),
        None => (inner, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(min) && max.is_none_or(|m| m.is_empty() || digits(m))
}

/// Go's (RE2's) ASCII meaning of a Perl class escape (`\w` …), as a POSIX class item.
fn ascii_perl_class(escape: char) -> Option<&'static str> {
    Some(match escape {
        'w' => "[:word:]",
        'W' => "[:^word:]",
        'd' => "[:digit:]",
        'D' => "[:^digit:]",
        's' => "[:space:]",
        'S' => "[:^space:]",
        _ => return None,
    })
}

/// Rewrites the Go syntax Rust's parser lacks into Rust's: `\Q…\E` literal runs, braces
/// that Go reads as literals, and Perl classes with Go's ASCII meaning.
fn go_to_rust_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some((i, ch)) = chars.next() {
        let first_in_class = class_start;
        class_start = false;
        match ch {
            '\\' => {
                let next = chars.next().map(|(_, c)| c);
                if !in_class && next == Some('Q') {
                    let rest = pattern.get(i + 2..).unwrap_or_default();
                    let (literal, tail) = match rest.find("\\E") {
                        Some(end) => (rest.get(..end).unwrap_or_default(), end + 2),
                        None => (rest, rest.len()),
                    };
                    out.push_str(&regex_syntax::escape(literal));
                    let stop = i + 2 + tail;
                    while chars.peek().is_some_and(|(j, _)| *j < stop) {
                        chars.next();
                    }
                } else if let Some(class) = next.and_then(ascii_perl_class) {
                    // Go's Perl classes are ASCII; Rust's Unicode ones compile hundreds of
                    // times larger, which made repeats such as `(\w{777}){777}` take seconds.
                    if in_class {
                        out.push_str(class);
                    } else {
                        out.push('[');
                        out.push_str(class);
                        out.push(']');
                    }
                } else {
                    out.push('\\');
                    if let Some(c) = next {
                        out.push(c);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek().is_some_and(|(_, c)| *c == '^') {
                    out.push('^');
                    chars.next();
                }
            }
            '[' if in_class && chars.peek().is_some_and(|(_, c)| *c == ':') => {
                // `[:alpha:]` inside a class.
                out.push('[');
                let rest = pattern.get(i..).unwrap_or_default();
                if let Some(end) = rest.find(":]") {
                    let stop = i + end + 2;
                    out.push_str(rest.get(1..end + 2).unwrap_or_default());
                    while chars.peek().is_some_and(|(j, _)| *j < stop) {
                        chars.next();
                    }
                }
            }
            ']' if in_class && !first_in_class => {
                in_class = false;
                out.push(']');
            }
            '{' if !in_class && !is_go_repeat(pattern.get(i..).unwrap_or_default()) => {
                out.push_str("\\{");
            }
            '}' if !in_class => out.push_str("\\}"),
            '{' if !in_class => {
                // A repetition: copy it whole so its closing brace is kept.
                let rest = pattern.get(i..).unwrap_or_default();
                let end = rest.find('}').unwrap_or(0);
                out.push_str(rest.get(..=end).unwrap_or_default());
                let stop = i + end + 1;
                while chars.peek().is_some_and(|(j, _)| *j < stop) {
                    chars.next();
                }
            }
            _ => out.push(ch),
        }
    }
    out
}

/// Whether Go's `regexp.Compile` would accept the pattern; the reason when it would not.
fn go_regexp_compile(pattern: &str) -> Result<(), String> {
    let rewritten = go_to_rust_syntax(pattern);
    let pattern = rewritten.as_str();
    let ast = regex_syntax::ast::parse::ParserBuilder::new()
        .nest_limit(REGEX_MAX_NEST)
        .build()
        .parse(pattern)
        .map_err(|e| e.kind().to_string())?;
    regex_syntax::ast::visit(&ast, GoSyntax)?;
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .nest_limit(REGEX_MAX_NEST + 2)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "expression too large".to_owned(),
            other => other
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned(),
        })
}

/// C-21: a regex as Istio's RE2 would see it: non-empty, at most 1024 bytes, RE2 syntax
/// (no look-around, no back-references), compiling within a size limit.
pub(crate) fn check_regex(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("regex string match should not be empty".to_owned());
    }
    if pattern.len() > REGEX_MAX {
        return Err("regex is too large, max length allowed is 1024".to_owned());
    }
    go_regexp_compile(pattern).map_err(|e| {
        format!(
            "error parsing regexp: {e}: `{pattern}`; Istio uses RE2 style regex-based match \
             (https://github.com/google/re2/wiki/Syntax)"
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_checked_as_go_re2() {
        assert!(check_regex("^/api/.*$").is_ok());
        assert!(check_regex("a{1000}").is_ok());
        assert!(check_regex("(?i)abc").is_ok());
        for go_literal in [
            "/api/{id}",
            "a{,5}",
            "a{",
            "x}",
            r"\Qa.b\E",
            r"\Q(",
            "[{]",
            "[]{]",
            r"[[:alpha:]{]",
        ] {
            assert!(check_regex(go_literal).is_ok(), "{go_literal}");
        }
        for bad in [
            "", "[", "?", "*", "(", "a{2}{3}", "(?=x)", "(?!x)", r"(a)\1", "a**", "a*+", "a{1001}",
            "(?x)a",
        ] {
            let e = check_regex(bad);
            assert!(e.is_err(), "{bad}");
        }
        assert!(
            check_regex("(")
                .unwrap_err()
                .contains("Istio uses RE2 style regex-based match")
        );
        assert!(
            check_regex(&"a".repeat(1025))
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn perl_classes_are_ascii_and_cheap() {
        // Fuzz finding (fuzz/regressions/regex/nested-unicode-word-repeats): Unicode `\w`
        // repeated 777 × 777 times took seconds to reach the compiled-size limit.
        let start = std::time::Instant::now();
        for hostile in [
            r"(?:\w{777}){777}",
            r"(?:[\w\d]{777}){777}",
            r"(?:\S{777}){777}",
        ] {
            let _ = check_regex(hostile);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        for ok in [
            r"\w+",
            r"[\w.-]+",
            r"\d{3}-\D",
            r"[^\s]*\S",
            r"\W",
            r"[\W\d]",
            r"\bx\B",
        ] {
            assert_eq!(check_regex(ok), Ok(()), "{ok}");
        }
        assert!(check_regex(r"\pX").is_err());
        // Go's repeatIsValid: nested counts multiply.
        assert!(check_regex("(?:a{100}){10}").is_ok());
        assert!(check_regex("(?:a{100}){11}").is_err());
        assert!(check_regex("(?:(?:a{10}){10}){11}").is_err());
        assert!(check_regex("(?:a{2,}){500}").is_ok());
        assert!(check_regex("(?:a{0}){1000}").is_ok());
        assert!(check_regex("(?:a*){1000}").is_ok());
    }
}
