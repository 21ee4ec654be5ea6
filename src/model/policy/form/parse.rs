//! Reading `pg_get_expr`'s text into the small [`Expr`] tree the forms are
//! matched on: a tokenizer and a recursive-descent parser for the part of
//! PostgreSQL's expression grammar the deparser writes in policies.

/// The expression tree, as far as the forms need it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
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
            let (value, next) = quoted(&chars, i + usize::from(escapes), escapes)
                .ok_or("an unterminated string literal")?;
            i = next;
            out.push(Token::Text(value));
        } else if c == '"' {
            let (value, next) =
                quoted(&chars, i, false).ok_or("an unterminated quoted identifier")?;
            i = next;
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

/// The text quoted from `chars[open]` (a `'` or `"`) to its closing quote, a
/// doubled quote standing for one (and, with `escapes`, `\x` for `x`), and
/// the index after it; `None` when it never closes.
fn quoted(chars: &[char], open: usize, escapes: bool) -> Option<(String, usize)> {
    let quote = chars[open];
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match *chars.get(i)? {
            c if c == quote && chars.get(i + 1) == Some(&quote) => {
                value.push(quote);
                i += 2;
            }
            c if c == quote => return Some((value, i + 1)),
            '\\' if escapes => {
                value.push(chars.get(i + 1).copied().unwrap_or('\\'));
                i += 2;
            }
            other => {
                value.push(other);
                i += 1;
            }
        }
    }
}

/// Whether a `-` after these tokens is an operator (not a number's sign).
fn last_is_operand(tokens: &[Token]) -> bool {
    matches!(
        tokens.last(),
        Some(Token::Word(_) | Token::Quoted(_) | Token::Text(_) | Token::Number(_))
    ) || tokens.last() == Some(&Token::Symbol(")".into()))
}

/// Parses a whole deparsed expression, or says where it stopped.
pub(super) fn parse(text: &str) -> Result<Expr, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_and_names_read_doubled_quotes_and_escapes() {
        assert_eq!(
            tokens(r#"E'a\'b' 'it''s' "x""y" 'open"#),
            Err("an unterminated string literal".into())
        );
        assert_eq!(
            tokens(r#"E'a\'b' 'it''s' "x""y""#).unwrap(),
            [
                Token::Text("a'b".into()),
                Token::Text("it's".into()),
                Token::Quoted("x\"y".into())
            ]
        );
        assert!(tokens("\"never closed").is_err());
    }
}
