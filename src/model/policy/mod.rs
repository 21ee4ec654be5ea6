//! The isolation predicate, and how a policy expression read back from
//! `pg_get_expr` is compared with it.
//!
//! The server deparses what it stores (`'app.tenant_id'::text`, extra
//! parentheses, `AS "nullif"`), so expressions are compared after
//! normalization: whitespace, identifier quotes, parentheses and `::text`
//! casts dropped, lower-cased outside string literals.

use std::cell::RefCell;
use std::collections::HashMap;

pub(crate) mod form;

pub(crate) use form::Form;

use super::sql::{self, quote_ident, quote_literal, Step};

/// The bundle's predicate for one table: `col = (SELECT NULLIF(current_setting(setting, true), '')::type)`.
pub(crate) fn predicate(column: &str, column_type: &str, setting: &str) -> String {
    sql::render(
        Step::Predicate,
        &[
            ("column", &quote_ident(column)),
            ("column_type", column_type),
            ("setting", &quote_literal(setting)),
        ],
    )
}

/// The function a shadow-mode policy calls for rows the predicate rejects.
pub(crate) const SHADOW_FUNCTION: &str = "rlsctl.shadow_seen";

/// What a shadow-mode policy records a row for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    /// USING: a row read (or updated, or deleted) that enforcement would hide.
    Read,
    /// WITH CHECK: a row written that enforcement would refuse.
    Write,
}

/// The shadow-mode form of the predicate for `table` (`schema.table`): the
/// isolation predicate first, so a row it accepts never calls the function,
/// OR the function that records the access and lets the row through.
pub(crate) fn shadow_predicate(
    column: &str,
    column_type: &str,
    setting: &str,
    table: &str,
    access: Access,
) -> String {
    let access = match access {
        Access::Read => "read",
        Access::Write => "write",
    };
    format!(
        "({}) OR {SHADOW_FUNCTION}({}, {})",
        predicate(column, column_type, setting),
        quote_literal(table),
        quote_literal(access)
    )
}

/// True when a deparsed policy expression calls the shadow function.
pub(crate) fn is_shadow(expr: &str) -> bool {
    thread_local! {
        static SHADOW: RefCell<Answers<bool>> = RefCell::default();
    }
    Answers::ask(&SHADOW, None, expr, || {
        normalize(expr).contains(&format!("{SHADOW_FUNCTION}'"))
    })
}

/// Answers about expression texts, remembered per thread: the checks ask them
/// of every policy, again and again, and the same few texts (the installed
/// predicate, `true`) come back for every table. Worked out afresh each time,
/// the normalizing and formatting cost most of the checks' time at 2,000
/// tables. The answers hold for one `scope` (the tenant column and setting
/// they were asked about, if any) and are forgotten when it changes or when
/// they grow past a bound, so user-written texts cannot grow them without end.
struct Answers<T> {
    scope: Option<(String, String)>,
    by_text: HashMap<String, T>,
}

impl<T> Default for Answers<T> {
    fn default() -> Self {
        Self {
            scope: None,
            by_text: HashMap::new(),
        }
    }
}

impl<T: Clone> Answers<T> {
    fn ask(
        answers: &'static std::thread::LocalKey<RefCell<Answers<T>>>,
        scope: Option<(&str, &str)>,
        expr: &str,
        work: impl FnOnce() -> T,
    ) -> T {
        let same_scope =
            |a: &Answers<T>| a.scope.as_ref().map(|(c, s)| (c.as_str(), s.as_str())) == scope;
        let known = answers.with_borrow(|a| {
            same_scope(a)
                .then(|| a.by_text.get(expr).cloned())
                .flatten()
        });
        if let Some(answer) = known {
            return answer;
        }
        let answer = work();
        answers.with_borrow_mut(|a| {
            if !same_scope(a) || a.by_text.len() >= 4096 {
                a.scope = scope.map(|(c, s)| (c.to_string(), s.to_string()));
                a.by_text.clear();
            }
            a.by_text.insert(expr.to_string(), answer.clone());
        });
        answer
    }
}

/// True when two expressions are the same after normalization.
pub(crate) fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// Normalizes an expression for comparison (see the module comment). A space
/// survives only between two word characters, so `::integer OR true` cannot
/// pass for a type name.
pub(crate) fn normalize(expr: &str) -> String {
    thread_local! {
        static NORMALIZED: RefCell<Answers<String>> = RefCell::default();
    }
    Answers::ask(&NORMALIZED, None, expr, || normalize_uncached(expr))
}

fn normalize_uncached(expr: &str) -> String {
    let expr = expr.replace(" AS \"nullif\"", "").replace(" AS nullif", "");
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '$';
    let mut out = String::with_capacity(expr.len());
    let mut pending_space = false;
    let emit = |out: &mut String, c: char, pending_space: &mut bool| {
        if *pending_space && out.chars().last().is_some_and(is_word) && is_word(c) {
            out.push(' ');
        }
        *pending_space = false;
        out.push(c);
    };
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                emit(&mut out, c, &mut pending_space);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\'' {
                        match chars.next_if_eq(&'\'') {
                            Some(quote) => out.push(quote),
                            None => break,
                        }
                    }
                }
            }
            '"' => {}
            '(' | ')' => pending_space = true,
            c if c.is_whitespace() => pending_space = true,
            c => {
                for lower in c.to_lowercase() {
                    emit(&mut out, lower, &mut pending_space);
                }
            }
        }
    }
    strip_text_casts(&out).replace("pg_catalog.", "")
}

fn strip_text_casts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("::text") {
        let after = &rest[at + 6..];
        let ends_word = !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        if !ends_word {
            out.push_str("::text");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// True when `expr` restricts `column` to the tenant in `setting`, in one of
/// the forms [`form`] recognizes (with or without the `(SELECT ...)` wrapper,
/// `NULLIF`, `missing_ok`, a cast to any type, operands either way round).
/// Anything more (`OR true`, another column, another setting) is not accepted.
pub(crate) fn scopes_to_tenant(expr: &str, column: &str, setting: &str) -> bool {
    matches!(classify(expr, column, setting), Form::Scoped(_))
}

/// What `expr` does with the tenant (see [`form`]), remembered per text.
pub(crate) fn classify(expr: &str, column: &str, setting: &str) -> Form {
    thread_local! {
        static FORMS: RefCell<Answers<Form>> = RefCell::default();
    }
    Answers::ask(&FORMS, Some((column, setting)), expr, || {
        form::classify(expr, column, setting)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Deparsed-expression matching never panics on any text.
        #[test]
        fn policy_text_matching_never_panics(expr in "\\PC{0,200}") {
            let _ = scopes_to_tenant(&expr, "tenant_id", "app.tenant_id");
            let _ = normalize(&expr);
        }
    }

    /// A remembered answer is the answer for the column and setting it was
    /// asked about: asked again about another, the text is read afresh.
    #[test]
    fn remembered_answers_hold_for_their_column_and_setting() {
        for _ in 0..2 {
            assert!(scopes_to_tenant(DEPARSED, "tenant_id", "app.tenant_id"));
            assert!(!scopes_to_tenant(DEPARSED, "owner_id", "app.tenant_id"));
            assert!(!scopes_to_tenant(DEPARSED, "tenant_id", "app.owner_id"));
        }
        assert!(!is_shadow(DEPARSED));
        assert!(is_shadow(&shadow_predicate(
            "tenant_id",
            "integer",
            "app.tenant_id",
            "public.orders",
            Access::Read
        )));
    }

    // As PostgreSQL 15 deparses the bundle's policy on an integer column.
    const DEPARSED: &str =
        "(tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\"))";

    #[test]
    fn deparsed_policy_equals_the_bundle_predicate() {
        assert!(same(
            DEPARSED,
            &predicate("tenant_id", "integer", "app.tenant_id")
        ));
        assert!(!same(
            DEPARSED,
            &predicate("tenant_id", "uuid", "app.tenant_id")
        ));
        assert!(scopes_to_tenant(DEPARSED, "tenant_id", "app.tenant_id"));
    }

    #[test]
    fn widening_or_foreign_expressions_do_not_scope() {
        for bad in [
            "true",
            "((tenant_id = (current_setting('app.tenant_id'::text))::integer) OR true)",
            "(other_id = (current_setting('app.tenant_id'::text))::integer)",
            "(tenant_id = (current_setting('app.other'::text))::integer)",
            "(tenant_id IS NOT NULL)",
        ] {
            assert!(
                !scopes_to_tenant(bad, "tenant_id", "app.tenant_id"),
                "{bad}"
            );
        }
        assert!(scopes_to_tenant(
            "(tenant_id = current_setting('app.tenant_id'::text))",
            "tenant_id",
            "app.tenant_id"
        ));
    }

    #[test]
    fn the_shadow_form_is_recognized_as_deparsed() {
        let deparsed = "((tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\")) OR rlsctl.shadow_seen('public.orders'::text, 'read'::text))";
        let ours = shadow_predicate(
            "tenant_id",
            "integer",
            "app.tenant_id",
            "public.orders",
            Access::Read,
        );
        assert!(
            same(deparsed, &ours),
            "{} vs {}",
            normalize(deparsed),
            normalize(&ours)
        );
        assert!(is_shadow(deparsed));
        assert!(!is_shadow(DEPARSED));
        assert!(!scopes_to_tenant(deparsed, "tenant_id", "app.tenant_id"));
    }

    #[test]
    fn literals_keep_their_case() {
        assert_eq!(normalize("A = 'Mixed Case'"), "a='Mixed Case'");
        assert_eq!(normalize("x::integer OR true"), "x::integer or true");
        assert_eq!(normalize("x::textual"), "x::textual");
    }
}
