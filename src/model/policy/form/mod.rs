//! What a policy expression says about the tenant, read from the text
//! `pg_get_expr` deparses: parsed into a small tree, then matched against the
//! forms people write — `col = current_setting('s')::int`, the scalar-subquery
//! form (which the server stores as `( SELECT ... AS current_setting)`),
//! `NULLIF`/`COALESCE` around the setting, casts to the column's type, the
//! column cast to text (varchar, or an integer compared as text), operands
//! either way round, `= ANY` of the setting split into an array, `AND` with
//! further conditions. Whatever the parser cannot read is said so
//! ([`Form::NotUnderstood`]), never taken for a widening or a scope.

/// What one expression does with the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// It restricts the tenant column to the tenant(s) in the setting.
    Scoped(Scope),
    /// It does not restrict rows to the tenant: why, in words.
    Unscoped(String),
    /// rlsctl could not read it: what it could not read.
    NotUnderstood(String),
}

/// How a scoping expression reads the setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// `current_setting(s, true)`: an unset setting is NULL, not an error.
    pub(crate) missing_ok: bool,
    /// A setting that was set and ended (`''`) raises when cast to a
    /// non-text type without `NULLIF(..., '')` first.
    pub(crate) raises_on_empty: bool,
    /// Inside a scalar subquery: evaluated once per statement (an InitPlan),
    /// not once per row.
    pub(crate) per_statement: bool,
    /// `= ANY` of a list: one session may see several tenants.
    pub(crate) list: bool,
    /// `COALESCE(..., 'x')`: with no tenant set, the rows of tenant `x` show.
    pub(crate) fallback: Option<String>,
}

impl Scope {
    /// Reads as the bundle's predicate does: an unset or ended setting
    /// matches nothing, without an error, one tenant per statement.
    pub(crate) fn exact(&self) -> bool {
        self.missing_ok && !self.raises_on_empty && self.fallback.is_none() && !self.list
    }

    /// Why a statement with no tenant set raises instead of seeing nothing,
    /// if it does.
    pub(crate) fn raises_without_tenant(&self) -> Option<&'static str> {
        if !self.missing_ok {
            Some("current_setting() without missing_ok raises \"unrecognized configuration parameter\" when no tenant was set")
        } else if self.raises_on_empty {
            Some("the setting is cast without NULLIF(..., ''): once a tenant was set and ended, the empty value raises an invalid-input error")
        } else {
            None
        }
    }

    /// What differs from the bundle's predicate, in words (empty when exact).
    pub(crate) fn differences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = self.raises_without_tenant() {
            out.push(why.to_string());
        }
        if let Some(fallback) = &self.fallback {
            out.push(format!(
                "COALESCE: with no tenant set, the rows of tenant {fallback:?} show"
            ));
        }
        if self.list {
            out.push("= ANY of a list: one session can see several tenants".into());
        }
        if !self.per_statement {
            out.push("the setting is read per row (no scalar subquery)".into());
        }
        out
    }
}

/// What `expr` (as deparsed) does with `column` and `setting`.
pub(crate) fn classify(expr: &str, column: &str, setting: &str) -> Form {
    match parse(expr) {
        Ok(tree) => Matcher { column, setting }.form(&tree),
        Err(what) => Form::NotUnderstood(what),
    }
}

/// The setting `expr` compares `column` with, whatever its name (`None`
/// when it compares the column with no setting, or cannot be read): what a
/// policy written for another setting (`app.current_tenant`) reads.
pub(crate) fn compared_setting(expr: &str, column: &str) -> Option<String> {
    let tree = parse(expr).ok()?;
    Matcher {
        column,
        setting: "",
    }
    .compared_setting(&tree)
}

mod parse;
#[cfg(test)]
mod tests;

use parse::{parse, Expr};

/// Types whose input accepts `''` (an ended setting compares, not raises).
fn text_like(type_name: &str) -> bool {
    let base = type_name.split('(').next().unwrap_or(type_name).trim();
    [
        "text",
        "character varying",
        "varchar",
        "character",
        "bpchar",
        "char",
        "citext",
        "name",
    ]
    .contains(&base)
}

/// What the setting side of a comparison reads.
struct Value {
    /// The setting it reads, if any.
    setting: Option<String>,
    scope: Scope,
    /// NULLIF(…, '') was applied (so a later cast sees NULL, not '').
    guarded: bool,
}

struct Matcher<'a> {
    column: &'a str,
    setting: &'a str,
}

impl Matcher<'_> {
    fn form(&self, expr: &Expr) -> Form {
        match expr {
            Expr::Bool(true) => Form::Unscoped("true: every row".into()),
            Expr::Bool(false) | Expr::Null => {
                Form::Unscoped("false: no row (nothing widens, nothing is reached)".into())
            }
            Expr::And(parts) => {
                let forms: Vec<Form> = parts.iter().map(|p| self.form(p)).collect();
                if let Some(scoped) = forms.iter().find(|f| matches!(f, Form::Scoped(_))) {
                    return scoped.clone();
                }
                forms
                    .iter()
                    .find(|f| matches!(f, Form::NotUnderstood(_)))
                    .cloned()
                    .unwrap_or_else(|| {
                        Form::Unscoped(format!(
                            "no part of the AND compares {} with the tenant setting",
                            self.column
                        ))
                    })
            }
            Expr::Or(parts) => {
                let forms: Vec<Form> = parts.iter().map(|p| self.form(p)).collect();
                let mut scopes = Vec::new();
                for form in forms {
                    match form {
                        Form::Scoped(s) => scopes.push(s),
                        Form::NotUnderstood(what) => return Form::NotUnderstood(what),
                        Form::Unscoped(why) => {
                            return Form::Unscoped(format!(
                                "an OR lets through what its other part allows ({why})"
                            ))
                        }
                    }
                }
                Form::Scoped(weakest(scopes))
            }
            Expr::Compare(op, left, right) if op == "=" => {
                for (column, value) in [(left, right), (right, left)] {
                    if self.is_column(column) {
                        return self.value_form(value, false);
                    }
                }
                self.other_column(left, right)
            }
            Expr::Any(op, left, right) if op == "=" && self.is_column(left) => {
                self.value_form(right, true)
            }
            Expr::Any(_, left, right) => self.other_column(left, right),
            Expr::Compare(op, _, _) => Form::Unscoped(format!("compares with {op}, not =")),
            Expr::Not(_) => Form::Unscoped("a negation".into()),
            Expr::Call(name, _) => Form::Unscoped(format!("a call to {name}()")),
            Expr::Column(name) => Form::Unscoped(format!("the column {name} alone")),
            Expr::Other(what) => Form::Unscoped(what.clone()),
            Expr::Cast(inner, _) | Expr::Subquery(inner) => self.form(inner),
            _ => Form::Unscoped("no comparison of the tenant column".into()),
        }
    }

    /// See [`compared_setting`].
    fn compared_setting(&self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::And(parts) | Expr::Or(parts) => {
                parts.iter().find_map(|p| self.compared_setting(p))
            }
            Expr::Compare(op, left, right) if op == "=" => [(left, right), (right, left)]
                .into_iter()
                .filter(|(column, _)| self.is_column(column))
                .find_map(|(_, value)| self.value(value, false).ok()?.setting),
            Expr::Any(op, left, right) if op == "=" && self.is_column(left) => {
                self.value(right, true).ok()?.setting
            }
            Expr::Cast(inner, _) | Expr::Subquery(inner) => self.compared_setting(inner),
            _ => None,
        }
    }

    fn other_column(&self, left: &Expr, right: &Expr) -> Form {
        match [left, right].into_iter().find_map(column_name) {
            Some(other) => {
                Form::Unscoped(format!("compares the column {other}, not {}", self.column))
            }
            None => Form::Unscoped(format!("does not compare the column {}", self.column)),
        }
    }

    /// The tenant column, bare or cast (a varchar column compared as text).
    fn is_column(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Column(name) => name == self.column,
            Expr::Cast(inner, _) => self.is_column(inner),
            _ => false,
        }
    }

    fn value_form(&self, value: &Expr, list: bool) -> Form {
        match self.value(value, list) {
            Ok(Value {
                setting: Some(s),
                scope,
                ..
            }) if s == self.setting => Form::Scoped(scope),
            Ok(Value {
                setting: Some(s), ..
            }) => Form::Unscoped(format!(
                "reads the setting '{s}', not the configured '{}' (RLSCTL_TENANT_SETTING)",
                self.setting
            )),
            Ok(Value { setting: None, .. }) => Form::Unscoped(format!(
                "compares {} with a constant, not the tenant setting",
                self.column
            )),
            Err(why) => Form::Unscoped(why),
        }
    }

    /// `current_setting(s[, missing_ok])` itself: the setting read and
    /// whether a missing one is NULL rather than an error.
    fn setting(args: &[Expr], list: bool) -> Result<Value, String> {
        let setting = match args.first().map(strip_casts) {
            Some(Expr::Text(s)) => s.clone(),
            _ => return Err("current_setting() of something other than a literal name".into()),
        };
        let missing_ok = match args.get(1).map(strip_casts) {
            None | Some(Expr::Bool(false)) => false,
            Some(Expr::Bool(true)) => true,
            Some(_) => return Err("current_setting() with a computed missing_ok".into()),
        };
        Ok(Value {
            setting: Some(setting),
            scope: Scope {
                missing_ok,
                list,
                ..Scope::default()
            },
            guarded: false,
        })
    }

    /// The setting side: `current_setting(s[, missing_ok])` under casts,
    /// NULLIF, COALESCE and scalar subqueries (a list under
    /// string_to_array / unnest when `list`).
    fn value(&self, expr: &Expr, list: bool) -> Result<Value, String> {
        match expr {
            Expr::Call(name, args) if name == "current_setting" => Self::setting(args, list),
            Expr::Cast(inner, ty) => {
                let mut value = self.value(inner, list)?;
                let element = ty.trim_end_matches("[]");
                if !text_like(element) && !value.guarded {
                    value.scope.raises_on_empty = true;
                }
                Ok(value)
            }
            Expr::Subquery(inner) => {
                let mut value = self.value(inner, list)?;
                value.scope.per_statement = true;
                Ok(value)
            }
            Expr::Call(name, args) if name == "nullif" && args.len() == 2 => {
                if !matches!(strip_casts(&args[1]), Expr::Text(t) if t.is_empty()) {
                    return Err("NULLIF with something other than ''".into());
                }
                let mut value = self.value(&args[0], list)?;
                value.guarded = true;
                Ok(value)
            }
            Expr::Call(name, args) if name == "coalesce" && args.len() == 2 => {
                let mut value = self.value(&args[0], list)?;
                match strip_casts(&args[1]) {
                    Expr::Text(t) | Expr::Number(t) => value.scope.fallback = Some(t.clone()),
                    Expr::Null => {}
                    _ => return Err("COALESCE with a computed fallback".into()),
                }
                if value.scope.fallback.as_deref() == Some("") {
                    // '' as the fallback is an ended setting again.
                    value.scope.fallback = None;
                    value.guarded = false;
                }
                Ok(value)
            }
            Expr::Call(name, args)
                if list
                    && ["string_to_array", "regexp_split_to_array", "unnest"]
                        .contains(&name.as_str()) =>
            {
                let first = args.first().ok_or("a list call without arguments")?;
                let mut value = self.value(first, list)?;
                // An element of '' raises when cast; NULLIF cannot guard it.
                value.guarded = false;
                value.scope.list = true;
                Ok(value)
            }
            Expr::Text(_) | Expr::Number(_) | Expr::Null => Ok(Value {
                setting: None,
                scope: Scope::default(),
                guarded: true,
            }),
            Expr::Column(name) => Err(format!("compares {} with the column {name}", self.column)),
            Expr::Call(name, _) => Err(format!(
                "compares {} with {name}(), not the tenant setting",
                self.column
            )),
            _ => Err(format!(
                "compares {} with an expression rlsctl does not read as the tenant setting",
                self.column
            )),
        }
    }
}

fn strip_casts(expr: &Expr) -> &Expr {
    match expr {
        Expr::Cast(inner, _) => strip_casts(inner),
        other => other,
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match strip_casts(expr) {
        Expr::Column(name) => Some(name),
        _ => None,
    }
}

/// The weakest of several scopes (an OR of them is as open as its widest part).
fn weakest(scopes: Vec<Scope>) -> Scope {
    scopes.into_iter().fold(
        Scope {
            missing_ok: true,
            per_statement: true,
            ..Scope::default()
        },
        |a, b| Scope {
            missing_ok: a.missing_ok && b.missing_ok,
            raises_on_empty: a.raises_on_empty || b.raises_on_empty,
            per_statement: a.per_statement && b.per_statement,
            list: a.list || b.list,
            fallback: a.fallback.or(b.fallback),
        },
    )
}
