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

/// The expression tree, as far as the forms need it.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Column(String),
    Text(String),
    Number(String),
    Bool(bool),
    Null,
    Cast(Box<Expr>, String),
    Call(String, Vec<Expr>),
    Array(Vec<Expr>),
    /// `( SELECT expr AS alias )`: a scalar subquery of one expression.
    Subquery(Box<Expr>),
    /// `a op b`.
    Compare(String, Box<Expr>, Box<Expr>),
    /// `a op ANY (b)`, `a IN (SELECT b)`.
    Any(String, Box<Expr>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `a IS [NOT] NULL`, `IS [NOT] DISTINCT FROM`, arithmetic: read, but no
    /// form of the tenant.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Number(String),
    Symbol(String),
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || ((c == 'E' || c == 'e') && chars.get(i + 1) == Some(&'\'')) {
            let escapes = c != '\'';
            i += if escapes { 2 } else { 1 };
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => return Err("an unterminated string literal".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        value.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if escapes => {
                        value.push(chars.get(i + 1).copied().unwrap_or('\\'));
                        i += 2;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Token::Text(value));
        } else if c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("an unterminated quoted identifier".into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        value.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Token::Quoted(value));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token::Word(
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if c.is_ascii_digit()
            || (c == '-'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !last_is_operand(&out))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let symbol = match two.as_str() {
                "::" | "<>" | "!=" | "<=" | ">=" | "||" => two,
                _ if "()[],.=<>+-*/%~!@#^&|".contains(c) => c.to_string(),
                _ => return Err(format!("the character {c:?}")),
            };
            i += symbol.chars().count();
            out.push(Token::Symbol(symbol));
        }
    }
    Ok(out)
}

/// Whether a `-` after these tokens is an operator (not a number's sign).
fn last_is_operand(tokens: &[Token]) -> bool {
    matches!(
        tokens.last(),
        Some(Token::Word(_) | Token::Quoted(_) | Token::Text(_) | Token::Number(_))
    ) || tokens.last() == Some(&Token::Symbol(")".into()))
}

/// Parses a whole deparsed expression, or says where it stopped.
fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokens(text)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(format!("{} after a complete expression", describe(token))),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("the word {}", w.to_uppercase()),
        Token::Quoted(q) => format!("the identifier \"{q}\""),
        Token::Text(_) => "a string literal".into(),
        Token::Number(n) => format!("the number {n}"),
        Token::Symbol(s) => format!("\"{s}\""),
    }
}

/// Words that end an operand: never a column or function name here.
const RESERVED: [&str; 14] = [
    "and", "or", "not", "as", "select", "from", "any", "all", "in", "is", "case", "when", "then",
    "end",
];

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(s)) if s == symbol)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.is_word(word);
        self.at += usize::from(found);
        found
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.is_symbol(symbol);
        self.at += usize::from(found);
        found
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), String> {
        if self.eat_symbol(symbol) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(token) => format!("{} where \"{symbol}\" was expected", describe(token)),
            None => format!("the end where \"{symbol}\" was expected"),
        })
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.joined("or", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, String> {
        self.joined("and", Self::not, Expr::And)
    }

    /// `part` (`word` `part`)*: one part as it is, several joined by `make`.
    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<Expr, String>,
        make: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut parts = vec![part(self)?];
        while self.eat_word(word) {
            parts.push(part(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            make(parts)
        })
    }

    /// Comma-separated expressions up to `close` (which may come at once).
    fn items(&mut self, close: &str) -> Result<Vec<Expr>, String> {
        let mut items = Vec::new();
        if self.eat_symbol(close) {
            return Ok(items);
        }
        items.push(self.or()?);
        while self.eat_symbol(",") {
            items.push(self.or()?);
        }
        self.expect_symbol(close)?;
        Ok(items)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.arithmetic()?;
        if self.eat_word("is") {
            let negated = self.eat_word("not");
            let what = match self.next() {
                Some(Token::Word(w)) if w == "distinct" => {
                    if !self.eat_word("from") {
                        return Err("IS DISTINCT without FROM".into());
                    }
                    self.arithmetic()?;
                    "DISTINCT FROM"
                }
                Some(Token::Word(w))
                    if ["null", "true", "false", "unknown"].contains(&w.as_str()) =>
                {
                    "a constant"
                }
                other => {
                    return Err(format!(
                        "{} after IS",
                        other.as_ref().map_or("the end".into(), describe)
                    ))
                }
            };
            return Ok(Expr::Other(format!(
                "IS {}{what}",
                if negated { "NOT " } else { "" }
            )));
        }
        if self.eat_word("in") {
            self.expect_symbol("(")?;
            let list = if self.eat_word("select") {
                let item = self.or()?;
                self.alias()?;
                self.expect_symbol(")")?;
                Expr::Subquery(Box::new(item))
            } else {
                Expr::Array(self.items(")")?)
            };
            return Ok(Expr::Any("=".into(), Box::new(left), Box::new(list)));
        }
        let op = match self.peek() {
            Some(Token::Symbol(s))
                if ["=", "<>", "!=", "<", ">", "<=", ">="].contains(&s.as_str()) =>
            {
                s.clone()
            }
            Some(Token::Symbol(s)) if s == "~" => s.clone(),
            _ => return Ok(left),
        };
        self.at += 1;
        if self.is_word("any") || self.is_word("all") || self.is_word("some") {
            let quantifier = self.next();
            self.expect_symbol("(")?;
            let list = self.or()?;
            self.expect_symbol(")")?;
            if quantifier != Some(Token::Word("all".into())) {
                return Ok(Expr::Any(op, Box::new(left), Box::new(list)));
            }
            return Ok(Expr::Other(format!("{op} ALL")));
        }
        let right = self.arithmetic()?;
        Ok(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn arithmetic(&mut self) -> Result<Expr, String> {
        let left = self.postfix()?;
        let operator =
            |s: &str| ["+", "-", "*", "/", "%", "||", "&", "|", "#", "^", "@"].contains(&s);
        if !matches!(self.peek(), Some(Token::Symbol(s)) if operator(s)) {
            return Ok(left);
        }
        let mut ops = Vec::new();
        while let Some(Token::Symbol(s)) = self.peek().cloned() {
            if !operator(&s) {
                break;
            }
            self.at += 1;
            self.postfix()?;
            ops.push(s);
        }
        Ok(Expr::Other(format!("the operator {}", ops.join(" "))))
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        while self.eat_symbol("::") {
            expr = Expr::Cast(Box::new(expr), self.type_name()?);
        }
        Ok(expr)
    }

    /// A type name as `format_type` writes it: `integer`, `character
    /// varying(40)`, `public.citext`, `uuid[]`.
    fn type_name(&mut self) -> Result<String, String> {
        let mut name = match self.next() {
            Some(Token::Word(w)) => w,
            Some(Token::Quoted(q)) => q,
            other => {
                return Err(format!(
                    "{} where a type name was expected",
                    other.as_ref().map_or("the end".into(), describe)
                ))
            }
        };
        while self.eat_symbol(".") {
            match self.next() {
                Some(Token::Word(w) | Token::Quoted(w)) => name = w,
                _ => return Err("a qualified type name cut short".into()),
            }
        }
        const MORE: [&str; 6] = ["varying", "precision", "with", "without", "time", "zone"];
        while let Some(Token::Word(w)) = self.peek() {
            if !MORE.contains(&w.as_str()) {
                break;
            }
            name = format!("{name} {w}");
            self.at += 1;
        }
        if self.eat_symbol("(") {
            while !self.eat_symbol(")") {
                if self.next().is_none() {
                    return Err("a type modifier cut short".into());
                }
            }
        }
        while self.eat_symbol("[") {
            self.expect_symbol("]")?;
            name.push_str("[]");
        }
        Ok(name)
    }

    /// `AS alias` ending a subquery's one output column.
    fn alias(&mut self) -> Result<(), String> {
        if self.eat_word("as") {
            match self.next() {
                Some(Token::Word(_) | Token::Quoted(_)) => {}
                _ => return Err("AS without a name".into()),
            }
        }
        if self.is_word("from") || self.is_word("where") {
            return Err("a subquery that reads a table".into());
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.next().ok_or("the end where a value was expected")?;
        match token {
            Token::Symbol(s) if s == "(" => {
                let expr = if self.eat_word("select") {
                    let item = self.or()?;
                    self.alias()?;
                    Expr::Subquery(Box::new(item))
                } else {
                    self.or()?
                };
                self.expect_symbol(")")?;
                Ok(expr)
            }
            Token::Text(t) => Ok(Expr::Text(t)),
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Word(w) if w == "true" || w == "false" => Ok(Expr::Bool(w == "true")),
            Token::Word(w) if w == "null" => Ok(Expr::Null),
            Token::Word(w) if w == "array" => {
                self.expect_symbol("[")?;
                Ok(Expr::Array(self.items("]")?))
            }
            Token::Word(w) if RESERVED.contains(&w.as_str()) => Err(format!(
                "{} where a value was expected",
                describe(&Token::Word(w))
            )),
            Token::Word(name) | Token::Quoted(name) => {
                let mut name = name;
                while self.eat_symbol(".") {
                    match self.next() {
                        Some(Token::Word(w) | Token::Quoted(w)) => name = format!("{name}.{w}"),
                        _ => return Err("a qualified name cut short".into()),
                    }
                }
                if !self.eat_symbol("(") {
                    return Ok(Expr::Column(name));
                }
                let args = self.items(")")?;
                let name = name
                    .strip_prefix("pg_catalog.")
                    .unwrap_or(&name)
                    .to_string();
                Ok(Expr::Call(name, args))
            }
            other => Err(format!("{} where a value was expected", describe(&other))),
        }
    }
}

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

    /// The setting side: `current_setting(s[, missing_ok])` under casts,
    /// NULLIF, COALESCE and scalar subqueries (a list under
    /// string_to_array / unnest when `list`).
    fn value(&self, expr: &Expr, list: bool) -> Result<Value, String> {
        match expr {
            Expr::Call(name, args) if name == "current_setting" => {
                let setting = match args.first().map(strip_casts) {
                    Some(Expr::Text(s)) => s.clone(),
                    _ => {
                        return Err(
                            "current_setting() of something other than a literal name".into()
                        )
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMN: &str = "tenant_id";
    const SETTING: &str = "app.tenant_id";

    fn scope(expr: &str) -> Scope {
        match classify(expr, COLUMN, SETTING) {
            Form::Scoped(scope) => scope,
            other => panic!("{expr}: {other:?}"),
        }
    }

    /// As PostgreSQL 15 deparses what people write (each taken from a real
    /// server's pg_get_expr).
    #[test]
    fn the_forms_people_write_scope_to_the_tenant() {
        let exact = [
            // the bundle's own
            "(tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\"))",
            // text column, subquery form
            "(tenant_id = ( SELECT current_setting('app.tenant_id'::text, true) AS current_setting))",
            // varchar column: the column is cast to text
            "((tenant_id)::text = NULLIF(current_setting('app.tenant_id'::text, true), ''::text))",
        ];
        for expr in exact {
            assert!(scope(expr).exact(), "{expr}");
        }
        let subquery = scope("(tenant_id = ( SELECT (current_setting('app.tenant_id'::text, true))::integer AS current_setting))");
        assert!(subquery.missing_ok && subquery.per_statement && subquery.raises_on_empty);
        let bigint = scope("(tenant_id = (( SELECT current_setting('app.tenant_id'::text, true) AS current_setting))::bigint)");
        assert!(bigint.per_statement && bigint.raises_on_empty);
        let raising = scope("(tenant_id = (current_setting('app.tenant_id'::text))::integer)");
        assert!(!raising.missing_ok && !raising.per_statement);
        assert!(raising.raises_without_tenant().is_some());
        let reversed = scope("((current_setting('app.tenant_id'::text))::integer = tenant_id)");
        assert_eq!(reversed, raising);
        let uuid = scope("(tenant_id = (current_setting('app.tenant_id'::text, true))::uuid)");
        assert!(uuid.missing_ok && uuid.raises_on_empty);
        let citext = scope("(tenant_id = (current_setting('app.tenant_id'::text))::citext)");
        assert!(!citext.raises_on_empty && !citext.missing_ok);
        let varchar = scope("((tenant_id)::text = ((current_setting('app.tenant_id'::text))::character varying)::text)");
        assert!(!varchar.raises_on_empty);
        let fallback = scope("(tenant_id = (COALESCE(NULLIF(current_setting('app.tenant_id'::text, true), ''::text), '00000000-0000-0000-0000-000000000000'::text))::uuid)");
        assert_eq!(
            fallback.fallback.as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert!(!fallback.exact());
        let empty_fallback = scope("((tenant_id)::text = COALESCE(current_setting('app.tenant_id'::text, true), ''::text))");
        assert!(empty_fallback.exact(), "{empty_fallback:?}");
        let list = scope("(tenant_id = ANY ((string_to_array(current_setting('app.tenant_id'::text, true), ','::text))::integer[]))");
        assert!(list.list && list.missing_ok && !list.exact());
        let list_in = scope("(tenant_id IN ( SELECT (unnest(string_to_array(current_setting('app.tenant_id'::text, true), ','::text)))::uuid AS unnest))");
        assert!(list_in.list && list_in.per_statement);
        let narrowed = scope("((tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer) AND true)");
        assert!(narrowed.missing_ok && !narrowed.raises_on_empty);
    }

    #[test]
    fn what_does_not_scope_says_why() {
        for (expr, why) in [
            ("true", "every row"),
            ("((tenant_id = (current_setting('app.tenant_id'::text))::integer) OR true)", "OR"),
            ("(other_id = (current_setting('app.tenant_id'::text))::integer)", "other_id"),
            ("(tenant_id = (current_setting('app.current_tenant'::text))::integer)", "app.current_tenant"),
            ("(tenant_id IS NOT NULL)", "IS NOT"),
            ("(tenant_id = 42)", "constant"),
            ("(tenant_id <> (current_setting('app.tenant_id'::text))::integer)", "<>"),
            ("(tenant_id = owner_id)", "owner_id"),
            (
                "((tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\")) OR rlsctl.shadow_seen('public.orders'::text, 'read'::text))",
                "shadow_seen",
            ),
        ] {
            match classify(expr, COLUMN, SETTING) {
                Form::Unscoped(detail) => assert!(detail.contains(why), "{expr}: {detail}"),
                other => panic!("{expr}: {other:?}"),
            }
        }
    }

    #[test]
    fn what_cannot_be_read_is_said_so() {
        for expr in [
            "(tenant_id = CASE WHEN true THEN 1 ELSE 2 END)",
            "(tenant_id = ( SELECT t.id FROM tenants t WHERE (t.name = CURRENT_USER)))",
            "(tenant_id = 'unterminated",
        ] {
            assert!(
                matches!(classify(expr, COLUMN, SETTING), Form::NotUnderstood(_)),
                "{expr}"
            );
        }
    }

    proptest::proptest! {
        /// Any text gets an answer, never a panic.
        #[test]
        fn any_text_is_classified(expr in "\\PC{0,200}") {
            let _ = classify(&expr, COLUMN, SETTING);
        }
    }
}
