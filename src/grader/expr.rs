//! The expressions a challenge is written in: its inputs (`f([{'posts': i} for i in range(3)])`),
//! its scoring conditions (`result.get('active_count') == 0`) and the `{...}` parts of its
//! reasons. They are a subset of Python's expression grammar, evaluated here, outside the
//! sandbox, over [`PyValue`]s with Python's semantics: what would raise in Python is an `Err`.
//!
//! Why Python and not CEL: the rubric is written in Python expressions and depends on Python's
//! equality and errors (`True == 1`, `0.0 == 0`, a tuple is not a list, `.get` on a list
//! raises, `len` of a str counts characters), which CEL defines differently; organizers write
//! the same expressions they would in the original grader.

use std::cell::Cell;
use std::cmp::Ordering;

use super::pyvalue::{PyError, PyResult, PyValue};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(PyValue),
    Name(String),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Attr(Box<Expr>, String),
    Call {
        func: Box<Expr>,
        args: Vec<Expr>,
        kwargs: Vec<(String, Expr)>,
    },
    Index(Box<Expr>, Box<Expr>),
    Slice {
        of: Box<Expr>,
        start: Option<Box<Expr>>,
        stop: Option<Box<Expr>>,
    },
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    IfElse {
        then: Box<Expr>,
        cond: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `[elt for ...]`; a generator expression is evaluated as a list.
    Comprehension {
        elt: Box<Expr>,
        clauses: Vec<ForClause>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForClause {
    pub targets: Vec<String>,
    pub unpack: bool,
    pub iter: Expr,
    pub conds: Vec<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Is,
    IsNot,
}

/// A parse problem: what is wrong and at which character of the text.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub at: usize,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, pos: 0, end: text.len() };
    let expr = parser.expr_list()?;
    if parser.pos < parser.tokens.len() {
        return Err(parser.error("unexpected text after the expression"));
    }
    Ok(expr)
}

/// A reason template: literal text and `{expression}` parts (`{{`, `}}` are braces).
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Expr(Expr),
}

pub fn parse_template(text: &str) -> Result<Vec<Piece>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                // The expression ends at the `}` that closes this brace (strings may hold braces).
                let (mut depth, mut quote, mut end) = (1, None::<char>, None);
                for (i, c) in chars.by_ref() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '\'' | '"') => quote = Some(c),
                        (None, '{' | '[' | '(') => depth += 1,
                        (None, '}') if depth == 1 => {
                            end = Some(i);
                            break;
                        }
                        (None, '}' | ']' | ')') => depth -= 1,
                        _ => {}
                    }
                }
                let end = end.ok_or(SyntaxError { message: "a '{' is never closed".into(), at })?;
                let expr = parse(&text[at + 1..end]).map_err(|e| SyntaxError { at: at + 1 + e.at, ..e })?;
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Expr(expr));
            }
            '}' => return Err(SyntaxError { message: "a single '}' (write '}}' for a brace)".into(), at }),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

impl Expr {
    /// The names this expression reads that it does not bind itself (comprehension targets).
    pub fn free_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_names(&mut Vec::new(), &mut out);
        out
    }

    fn collect_names(&self, bound: &mut Vec<String>, out: &mut Vec<String>) {
        let mut each =
            |items: &[&Expr], bound: &mut Vec<String>| items.iter().for_each(|e| e.collect_names(bound, out));
        match self {
            Expr::Const(_) => {}
            Expr::Name(name) => {
                if !bound.contains(name) && !out.contains(name) {
                    out.push(name.clone());
                }
            }
            Expr::List(items) | Expr::Tuple(items) => each(&items.iter().collect::<Vec<_>>(), bound),
            Expr::Dict(pairs) => each(&pairs.iter().flat_map(|(k, v)| [k, v]).collect::<Vec<_>>(), bound),
            Expr::Attr(of, _) | Expr::Neg(of) | Expr::Not(of) => each(&[of], bound),
            Expr::Call { func, args, kwargs } => {
                let mut items: Vec<&Expr> = vec![func];
                items.extend(args.iter());
                items.extend(kwargs.iter().map(|(_, v)| v));
                each(&items, bound)
            }
            Expr::Index(a, b) | Expr::Binary(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => each(&[a, b], bound),
            Expr::Slice { of, start, stop } => {
                let mut items: Vec<&Expr> = vec![of];
                items.extend(start.iter().map(|b| b.as_ref()));
                items.extend(stop.iter().map(|b| b.as_ref()));
                each(&items, bound)
            }
            Expr::Compare(first, rest) => {
                let mut items: Vec<&Expr> = vec![first];
                items.extend(rest.iter().map(|(_, e)| e));
                each(&items, bound)
            }
            Expr::IfElse { then, cond, otherwise } => each(&[then, cond, otherwise], bound),
            Expr::Comprehension { elt, clauses } => {
                let depth = bound.len();
                for clause in clauses {
                    clause.iter.collect_names(bound, out);
                    bound.extend(clause.targets.iter().cloned());
                    for cond in &clause.conds {
                        cond.collect_names(bound, out);
                    }
                }
                elt.collect_names(bound, out);
                bound.truncate(depth);
            }
        }
    }
}

// --- tokens ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Str(String),
    Name(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "//", "**", "(", ")", "[", "]", "{", "}", ",", ":", ".", "<", ">", "+", "-", "*", "/", "%",
    "=",
];

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |message: &str, at: usize| SyntaxError { message: message.into(), at };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() || c == b'\\' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_') {
                let exponent_sign = matches!(bytes[i], b'e' | b'E') && matches!(bytes.get(i + 1), Some(b'+' | b'-'));
                i += if exponent_sign { 2 } else { 1 };
            }
            let literal = text[start..i].replace('_', "");
            let token = if literal.contains(['.', 'e', 'E']) {
                Tok::Float(literal.parse().map_err(|_| error("not a number", start))?)
            } else {
                Tok::Int(literal.parse().map_err(|_| error("not a number (or too large)", start))?)
            };
            tokens.push((token, start));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push((Tok::Name(text[start..i].to_string()), start));
        } else if c == b'\'' || c == b'"' {
            let (value, next) = string_literal(text, i)?;
            tokens.push((Tok::Str(value), start));
            i = next;
        } else if c == b'#' {
            return Err(error("comments are not allowed in an expression", start));
        } else {
            let op =
                OPS.iter().find(|op| text[i..].starts_with(**op)).ok_or_else(|| error("unexpected character", i))?;
            if *op == "**" {
                return Err(error("'**' is not supported", i));
            }
            tokens.push((Tok::Op(op), start));
            i += op.len();
        }
    }
    Ok(tokens)
}

fn string_literal(text: &str, start: usize) -> Result<(String, usize), SyntaxError> {
    let quote = text.as_bytes()[start] as char;
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        let at = start + 1 + offset;
        match c {
            c if c == quote => return Ok((value, at + 1)),
            '\\' => {
                let (_, escaped) = chars.next().ok_or(SyntaxError { message: "unfinished string".into(), at })?;
                match escaped {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    '\\' | '\'' | '"' => value.push(escaped),
                    'x' | 'u' => {
                        let digits: String =
                            chars.by_ref().take(if escaped == 'x' { 2 } else { 4 }).map(|(_, c)| c).collect();
                        let code = u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32);
                        value.push(code.ok_or(SyntaxError { message: "bad escape in a string".into(), at })?);
                    }
                    _ => return Err(SyntaxError { message: format!("unknown escape \\{escaped}"), at }),
                }
            }
            c => value.push(c),
        }
    }
    Err(SyntaxError { message: "unfinished string".into(), at: start })
}

// --- grammar -----------------------------------------------------------------------------

/// A call's positional and keyword arguments.
type Arguments = (Vec<Expr>, Vec<(String, Expr)>);

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn error(&self, message: &str) -> SyntaxError {
        let at = self.tokens.get(self.pos).map(|t| t.1).unwrap_or(self.end);
        SyntaxError { message: message.into(), at }
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.0)
    }

    fn at_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(n)) if n == word)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let found = self.at_op(op);
        self.pos += found as usize;
        found
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.at_word(word);
        self.pos += found as usize;
        found
    }

    fn expect_op(&mut self, op: &str) -> Result<(), SyntaxError> {
        if self.eat_op(op) { Ok(()) } else { Err(self.error(&format!("expected '{op}'"))) }
    }

    /// `a, b` at the top level is a tuple, as in Python.
    fn expr_list(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.expr()?;
        if !self.at_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_op(",") {
            if self.pos >= self.tokens.len() {
                break;
            }
            items.push(self.expr()?);
        }
        Ok(Expr::Tuple(items))
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        if self.at_word("lambda") {
            return Err(self.error("lambda is not supported"));
        }
        let then = self.or()?;
        if self.eat_word("if") {
            let cond = self.or()?;
            if !self.eat_word("else") {
                return Err(self.error("expected 'else'"));
            }
            let otherwise = self.expr()?;
            return Ok(Expr::IfElse { then: Box::new(then), cond: Box::new(cond), otherwise: Box::new(otherwise) });
        }
        Ok(then)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.not()?;
        while self.eat_word("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.arith()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Op("==")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                Some(Tok::Name(n)) if n == "in" => CmpOp::In,
                Some(Tok::Name(n)) if n == "is" => CmpOp::Is,
                Some(Tok::Name(n))
                    if n == "not" && matches!(self.tokens.get(self.pos + 1), Some((Tok::Name(m), _)) if m == "in") =>
                {
                    self.pos += 1;
                    CmpOp::NotIn
                }
                _ => break,
            };
            self.pos += 1;
            let op = if op == CmpOp::Is && self.eat_word("not") { CmpOp::IsNot } else { op };
            rest.push((op, self.arith()?));
        }
        Ok(if rest.is_empty() { first } else { Expr::Compare(Box::new(first), rest) })
    }

    fn arith(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat_op("+") {
                BinOp::Add
            } else if self.eat_op("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                Some(Tok::Op("//")) => BinOp::FloorDiv,
                Some(Tok::Op("%")) => BinOp::Mod,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_op("-") {
            return Ok(match self.unary()? {
                Expr::Const(PyValue::Int(n)) => Expr::Const(PyValue::Int(-n)),
                Expr::Const(PyValue::Float(f)) => Expr::Const(PyValue::Float(-f)),
                other => Expr::Neg(Box::new(other)),
            });
        }
        if self.eat_op("+") {
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut expr = self.atom()?;
        loop {
            if self.eat_op("(") {
                let (args, kwargs) = self.arguments()?;
                expr = Expr::Call { func: Box::new(expr), args, kwargs };
            } else if self.eat_op("[") {
                let start = if self.at_op(":") { None } else { Some(Box::new(self.expr()?)) };
                if self.eat_op(":") {
                    let stop = if self.at_op("]") { None } else { Some(Box::new(self.expr()?)) };
                    self.expect_op("]")?;
                    expr = Expr::Slice { of: Box::new(expr), start, stop };
                } else {
                    self.expect_op("]")?;
                    expr = Expr::Index(Box::new(expr), start.expect("parsed above"));
                }
            } else if self.eat_op(".") {
                match self.tokens.get(self.pos) {
                    Some((Tok::Name(name), _)) => {
                        expr = Expr::Attr(Box::new(expr), name.clone());
                        self.pos += 1;
                    }
                    _ => return Err(self.error("expected a name after '.'")),
                }
            } else {
                return Ok(expr);
            }
        }
    }

    /// Call arguments after `(`, through `)`: positional, then `name=value`; a lone generator
    /// expression needs no parentheses of its own.
    fn arguments(&mut self) -> Result<Arguments, SyntaxError> {
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        while !self.eat_op(")") {
            if let (Some((Tok::Name(name), _)), Some((Tok::Op("="), _))) =
                (self.tokens.get(self.pos), self.tokens.get(self.pos + 1))
            {
                let name = name.clone();
                self.pos += 2;
                kwargs.push((name, self.expr()?));
            } else {
                if !kwargs.is_empty() {
                    return Err(self.error("a positional argument follows a keyword argument"));
                }
                let arg = self.expr()?;
                if self.at_word("for") {
                    args.push(self.comprehension(arg)?);
                } else {
                    args.push(arg);
                }
            }
            if !self.eat_op(",") {
                self.expect_op(")")?;
                break;
            }
        }
        Ok((args, kwargs))
    }

    fn comprehension(&mut self, elt: Expr) -> Result<Expr, SyntaxError> {
        let mut clauses = Vec::new();
        while self.eat_word("for") {
            let parenthesized = self.eat_op("(");
            let mut targets = Vec::new();
            loop {
                match self.tokens.get(self.pos) {
                    Some((Tok::Name(name), _)) if name != "in" => targets.push(name.clone()),
                    _ => return Err(self.error("expected a name after 'for'")),
                }
                self.pos += 1;
                if !self.eat_op(",") {
                    break;
                }
            }
            if parenthesized {
                self.expect_op(")")?;
            }
            if !self.eat_word("in") {
                return Err(self.error("expected 'in'"));
            }
            let iter = self.or()?;
            let mut conds = Vec::new();
            while self.eat_word("if") {
                conds.push(self.or()?);
            }
            let unpack = parenthesized || targets.len() > 1;
            clauses.push(ForClause { targets, unpack, iter, conds });
        }
        Ok(Expr::Comprehension { elt: Box::new(elt), clauses })
    }

    fn atom(&mut self) -> Result<Expr, SyntaxError> {
        let Some((token, _)) = self.tokens.get(self.pos).cloned() else {
            return Err(self.error("the expression ends too early"));
        };
        self.pos += 1;
        Ok(match token {
            Tok::Int(n) => Expr::Const(PyValue::Int(n)),
            Tok::Float(f) => Expr::Const(PyValue::Float(f)),
            Tok::Str(mut s) => {
                // Adjacent literals join, as in Python.
                while let Some((Tok::Str(more), _)) = self.tokens.get(self.pos) {
                    s.push_str(more);
                    self.pos += 1;
                }
                Expr::Const(PyValue::Str(s))
            }
            Tok::Name(name) => match name.as_str() {
                "None" => Expr::Const(PyValue::None),
                "True" => Expr::Const(PyValue::Bool(true)),
                "False" => Expr::Const(PyValue::Bool(false)),
                "and" | "or" | "not" | "in" | "is" | "if" | "else" | "for" => {
                    self.pos -= 1;
                    return Err(self.error(&format!("unexpected '{name}'")));
                }
                _ => Expr::Name(name),
            },
            Tok::Op("(") => {
                if self.eat_op(")") {
                    return Ok(Expr::Tuple(Vec::new()));
                }
                let first = self.expr()?;
                if self.at_word("for") {
                    let comprehension = self.comprehension(first)?;
                    self.expect_op(")")?;
                    return Ok(comprehension);
                }
                if self.eat_op(")") {
                    return Ok(first);
                }
                let mut items = vec![first];
                while self.eat_op(",") {
                    if self.at_op(")") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                self.expect_op(")")?;
                Expr::Tuple(items)
            }
            Tok::Op("[") => {
                if self.eat_op("]") {
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                if self.at_word("for") {
                    let comprehension = self.comprehension(first)?;
                    self.expect_op("]")?;
                    return Ok(comprehension);
                }
                let mut items = vec![first];
                while self.eat_op(",") {
                    if self.at_op("]") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                self.expect_op("]")?;
                Expr::List(items)
            }
            Tok::Op("{") => {
                let mut pairs = Vec::new();
                while !self.eat_op("}") {
                    let key = self.expr()?;
                    self.expect_op(":")?;
                    pairs.push((key, self.expr()?));
                    if !self.eat_op(",") {
                        self.expect_op("}")?;
                        break;
                    }
                }
                Expr::Dict(pairs)
            }
            _ => {
                self.pos -= 1;
                return Err(self.error("expected a value"));
            }
        })
    }
}

// --- evaluation --------------------------------------------------------------------------

/// Names an expression can see: the caller's (`result`, `calls`, a check's `let`s, ...).
pub trait Names {
    /// `None` when the name is not defined here.
    fn lookup(&self, name: &str, eval: &Evaluator) -> Option<PyResult<PyValue>>;
}

impl Names for () {
    fn lookup(&self, _: &str, _: &Evaluator) -> Option<PyResult<PyValue>> {
        None
    }
}

/// Evaluates expressions with a bounded amount of work (organizers' expressions run over
/// what submissions returned, whose size the harness caps).
pub struct Evaluator<'a> {
    names: &'a dyn Names,
    fuel: Cell<u64>,
    depth: Cell<u32>,
}

const FUEL: u64 = 2_000_000;
const MAX_DEPTH: u32 = 64;
const MAX_RANGE: i128 = 100_000;

fn raise<T>(text: impl Into<String>) -> PyResult<T> {
    Err(PyError(text.into()))
}

/// Local variables of comprehensions, innermost last.
type Locals<'s> = Vec<(&'s str, PyValue)>;

impl<'a> Evaluator<'a> {
    pub fn new(names: &'a dyn Names) -> Evaluator<'a> {
        Evaluator { names, fuel: Cell::new(FUEL), depth: Cell::new(0) }
    }

    pub fn eval(&self, expr: &Expr) -> PyResult<PyValue> {
        self.eval_in(expr, &mut Vec::new())
    }

    pub fn truthy(&self, expr: &Expr) -> PyResult<bool> {
        Ok(truthy(&self.eval(expr)?))
    }

    /// A template with each `{expression}` replaced by `str()` of its value; a part that
    /// raises shows the error instead, so a reason is never lost.
    pub fn render(&self, template: &[Piece]) -> String {
        template
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::Expr(expr) => match self.eval(expr) {
                    Ok(value) => py_str(&value),
                    Err(error) => format!("<{}>", error.0),
                },
            })
            .collect()
    }

    fn spend(&self, amount: u64) -> PyResult<()> {
        let left = self.fuel.get();
        if left < amount {
            return raise("RuntimeError: the expression took too much work");
        }
        self.fuel.set(left - amount);
        Ok(())
    }

    fn eval_in<'s>(&self, expr: &'s Expr, locals: &mut Locals<'s>) -> PyResult<PyValue> {
        self.spend(1)?;
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return raise("RecursionError: the expression is nested too deeply");
        }
        self.depth.set(depth + 1);
        let value = self.eval_inner(expr, locals);
        self.depth.set(depth);
        value
    }

    fn eval_inner<'s>(&self, expr: &'s Expr, locals: &mut Locals<'s>) -> PyResult<PyValue> {
        Ok(match expr {
            Expr::Const(value) => value.clone(),
            Expr::Name(name) => {
                if let Some((_, value)) = locals.iter().rev().find(|(n, _)| *n == name.as_str()) {
                    return Ok(value.clone());
                }
                match self.names.lookup(name, self) {
                    Some(value) => value?,
                    None if BUILTINS.contains(&name.as_str()) => {
                        return raise(format!("TypeError: {name} can only be called here"));
                    }
                    None => return raise(format!("NameError: name '{name}' is not defined")),
                }
            }
            Expr::List(items) => PyValue::List(self.all(items, locals)?),
            Expr::Tuple(items) => PyValue::Tuple(self.all(items, locals)?),
            Expr::Dict(pairs) => {
                let mut out: Vec<(PyValue, PyValue)> = Vec::new();
                for (k, v) in pairs {
                    let key = self.eval_in(k, locals)?;
                    let value = self.eval_in(v, locals)?;
                    insert(&mut out, key, value)?;
                }
                PyValue::Dict(out)
            }
            Expr::Attr(of, name) => {
                if let (Expr::Call { func, args, kwargs }, "__name__") = (of.as_ref(), name.as_str())
                    && matches!(func.as_ref(), Expr::Name(n) if n == "type")
                    && args.len() == 1
                    && kwargs.is_empty()
                {
                    return Ok(PyValue::Str(self.eval_in(&args[0], locals)?.type_name().to_string()));
                }
                let value = self.eval_in(of, locals)?;
                return raise(format!("AttributeError: '{}' object has no attribute '{name}'", value.type_name()));
            }
            Expr::Call { func, args, kwargs } => return self.call(func, args, kwargs, locals),
            Expr::Index(of, key) => {
                let of = self.eval_in(of, locals)?;
                getitem(&of, &self.eval_in(key, locals)?)?
            }
            Expr::Slice { of, start, stop } => {
                let of = self.eval_in(of, locals)?;
                let bound = |e: &'s Option<Box<Expr>>, locals: &mut Locals<'s>| -> PyResult<Option<i128>> {
                    match e {
                        None => Ok(None),
                        Some(e) => match self.eval_in(e, locals)? {
                            PyValue::Int(n) => Ok(Some(n)),
                            PyValue::Bool(b) => Ok(Some(b as i128)),
                            PyValue::None => Ok(None),
                            _ => raise("TypeError: slice indices must be integers or None"),
                        },
                    }
                };
                let (start, stop) = (bound(start, locals)?, bound(stop, locals)?);
                slice(&of, start, stop)?
            }
            Expr::Neg(of) => {
                let value = self.eval_in(of, locals)?;
                match number(&value) {
                    Some(Num::Int(n)) => {
                        PyValue::Int(n.checked_neg().ok_or(PyError("OverflowError: int too large".into()))?)
                    }
                    Some(Num::Float(f)) => PyValue::Float(-f),
                    None => return raise(format!("TypeError: bad operand type for unary -: '{}'", value.type_name())),
                }
            }
            Expr::Not(of) => PyValue::Bool(!truthy(&self.eval_in(of, locals)?)),
            Expr::Binary(op, left, right) => {
                let left = self.eval_in(left, locals)?;
                let right = self.eval_in(right, locals)?;
                self.spend(size_hint(&left) + size_hint(&right))?;
                binary(*op, &left, &right)?
            }
            Expr::And(left, right) => {
                let left = self.eval_in(left, locals)?;
                if !truthy(&left) { left } else { self.eval_in(right, locals)? }
            }
            Expr::Or(left, right) => {
                let left = self.eval_in(left, locals)?;
                if truthy(&left) { left } else { self.eval_in(right, locals)? }
            }
            Expr::Compare(first, rest) => {
                let mut left = self.eval_in(first, locals)?;
                for (op, right) in rest {
                    let right = self.eval_in(right, locals)?;
                    self.spend(size_hint(&left) + size_hint(&right))?;
                    if !compare(*op, &left, &right)? {
                        return Ok(PyValue::Bool(false));
                    }
                    left = right;
                }
                PyValue::Bool(true)
            }
            Expr::IfElse { then, cond, otherwise } => {
                if truthy(&self.eval_in(cond, locals)?) {
                    self.eval_in(then, locals)?
                } else {
                    self.eval_in(otherwise, locals)?
                }
            }
            Expr::Comprehension { elt, clauses } => {
                let mut out = Vec::new();
                self.clauses(elt, clauses, locals, &mut out)?;
                PyValue::List(out)
            }
        })
    }

    fn all<'s>(&self, items: &'s [Expr], locals: &mut Locals<'s>) -> PyResult<Vec<PyValue>> {
        items.iter().map(|item| self.eval_in(item, locals)).collect()
    }

    fn clauses<'s>(
        &self,
        elt: &'s Expr,
        clauses: &'s [ForClause],
        locals: &mut Locals<'s>,
        out: &mut Vec<PyValue>,
    ) -> PyResult<()> {
        let Some((clause, rest)) = clauses.split_first() else {
            out.push(self.eval_in(elt, locals)?);
            return Ok(());
        };
        let items = PyValue::iterate(&self.eval_in(&clause.iter, locals)?)?;
        'items: for item in items {
            self.spend(1)?;
            let bound = locals.len();
            if clause.unpack {
                let parts = PyValue::iterate(&item)?;
                if parts.len() != clause.targets.len() {
                    return raise(format!(
                        "ValueError: expected {} values to unpack, got {}",
                        clause.targets.len(),
                        parts.len()
                    ));
                }
                locals.extend(clause.targets.iter().map(String::as_str).zip(parts));
            } else {
                locals.push((clause.targets[0].as_str(), item));
            }
            for cond in &clause.conds {
                if !truthy(&self.eval_in(cond, locals)?) {
                    locals.truncate(bound);
                    continue 'items;
                }
            }
            let result = self.clauses(elt, rest, locals, out);
            locals.truncate(bound);
            result?;
        }
        Ok(())
    }

    fn call<'s>(
        &self,
        func: &'s Expr,
        args: &'s [Expr],
        kwargs: &'s [(String, Expr)],
        locals: &mut Locals<'s>,
    ) -> PyResult<PyValue> {
        if let Expr::Name(name) = func
            && name == "isinstance"
        {
            let [value, kinds] = args else {
                return raise("TypeError: isinstance expected 2 arguments");
            };
            let value = self.eval_in(value, locals)?;
            return Ok(PyValue::Bool(type_names(kinds)?.iter().any(|k| is_instance(&value, k))));
        }
        let values = self.all(args, locals)?;
        let mut named = Vec::new();
        for (name, value) in kwargs {
            named.push((name.as_str(), self.eval_in(value, locals)?));
        }
        for v in values.iter().chain(named.iter().map(|(_, v)| v)) {
            self.spend(size_hint(v))?;
        }
        match func {
            Expr::Attr(of, method) => {
                let of = self.eval_in(of, locals)?;
                self.spend(size_hint(&of))?;
                call_method(&of, method, values, &named)
            }
            Expr::Name(name) => call_builtin(name, values, &named),
            _ => raise("TypeError: only named functions and methods can be called"),
        }
    }
}

const BUILTINS: &[&str] = &[
    "len",
    "abs",
    "isinstance",
    "type",
    "set",
    "sorted",
    "sum",
    "min",
    "max",
    "all",
    "any",
    "round",
    "range",
    "list",
    "tuple",
    "str",
    "repr",
    "int",
    "float",
    "bool",
    "short",
    "approx",
    "dict",
    "NoneType",
];

/// The names `isinstance` accepts: a type name or a tuple of them.
fn type_names(expr: &Expr) -> PyResult<Vec<&str>> {
    fn one(e: &Expr) -> PyResult<&str> {
        const TYPES: &[&str] = &["dict", "list", "tuple", "str", "int", "float", "bool", "NoneType"];
        match e {
            Expr::Name(n) if TYPES.contains(&n.as_str()) => Ok(n.as_str()),
            _ => raise(format!("TypeError: isinstance() takes one of {} (or a tuple of them)", TYPES.join(", "))),
        }
    }
    match expr {
        Expr::Tuple(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn is_instance(value: &PyValue, kind: &str) -> bool {
    match kind {
        // bool is a subclass of int, as in Python.
        "int" => matches!(value, PyValue::Int(_) | PyValue::BigInt(_) | PyValue::Bool(_)),
        _ => value.type_name() == kind && !matches!(value, PyValue::Opaque(_)),
    }
}

/// Exactly `N` positional arguments (no keywords).
fn take_args<const N: usize>(name: &str, values: &mut [PyValue], named: &[(&str, PyValue)]) -> PyResult<[PyValue; N]> {
    if values.len() != N || !named.is_empty() {
        return raise(format!("TypeError: {name}() takes {N} positional argument(s)"));
    }
    Ok(std::array::from_fn(|i| std::mem::replace(&mut values[i], PyValue::None)))
}

fn keyword<'v>(named: &'v [(&str, PyValue)], name: &str) -> Option<&'v PyValue> {
    named.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

fn call_builtin(name: &str, mut values: Vec<PyValue>, named: &[(&str, PyValue)]) -> PyResult<PyValue> {
    let one = |values: &mut Vec<PyValue>| take_args::<1>(name, values, &[]).map(|[v]| v);
    let check_keywords = |allowed: &[&str]| -> PyResult<()> {
        match named.iter().find(|(n, _)| !allowed.contains(n)) {
            Some((n, _)) => raise(format!("TypeError: {name}() got an unexpected keyword argument '{n}'")),
            None => Ok(()),
        }
    };
    Ok(match name {
        "len" => PyValue::Int(one(&mut values)?.py_len()? as i128),
        "abs" => {
            let v = one(&mut values)?;
            match number(&v) {
                Some(Num::Int(n)) => PyValue::Int(n.abs()),
                Some(Num::Float(f)) => PyValue::Float(f.abs()),
                None => return raise(format!("TypeError: bad operand type for abs(): '{}'", v.type_name())),
            }
        }
        "bool" => PyValue::Bool(truthy(&one(&mut values)?)),
        "str" => PyValue::Str(py_str(&one(&mut values)?)),
        "repr" => PyValue::Str(repr(&one(&mut values)?)),
        "short" => PyValue::Str(repr(&one(&mut values)?).chars().take(60).collect()),
        "list" => PyValue::List(PyValue::iterate(&one(&mut values)?)?),
        "tuple" => PyValue::Tuple(PyValue::iterate(&one(&mut values)?)?),
        "set" => {
            // A set is kept as a list of distinct items; it only feeds len, in and equality.
            let mut out: Vec<PyValue> = Vec::new();
            for item in PyValue::iterate(&one(&mut values)?)? {
                hash_check(&item)?;
                if !out.iter().any(|x| x.py_eq(&item)) {
                    out.push(item);
                }
            }
            PyValue::List(out)
        }
        "dict" => {
            let mut out = Vec::new();
            if let Some(v) = values.pop() {
                for pair in PyValue::iterate(&v)? {
                    let [k, v] = take_args::<2>("dict", &mut PyValue::iterate(&pair)?, &[])?;
                    insert(&mut out, k, v)?;
                }
            }
            for (k, v) in named {
                insert(&mut out, PyValue::Str(k.to_string()), v.clone())?;
            }
            PyValue::Dict(out)
        }
        "int" => {
            let v = one(&mut values)?;
            match (&v, number(&v)) {
                (PyValue::Str(s), _) => PyValue::Int(s.trim().parse().map_err(|_| {
                    PyError(format!("ValueError: invalid literal for int() with base 10: {}", repr(&v)))
                })?),
                (_, Some(Num::Int(n))) => PyValue::Int(n),
                (_, Some(Num::Float(f))) if f.is_finite() => PyValue::Int(f.trunc() as i128),
                _ => return raise(format!("TypeError: int() cannot convert a {}", v.type_name())),
            }
        }
        "float" => {
            let v = one(&mut values)?;
            match (&v, number(&v)) {
                (PyValue::Str(s), _) => PyValue::Float(
                    s.trim()
                        .parse()
                        .map_err(|_| PyError(format!("ValueError: could not convert string to float: {}", repr(&v))))?,
                ),
                (_, Some(n)) => PyValue::Float(n.as_f64()),
                _ => return raise(format!("TypeError: float() cannot convert a {}", v.type_name())),
            }
        }
        "round" => {
            check_keywords(&[])?;
            let digits = if values.len() == 2 { values.pop() } else { None };
            let v = one(&mut values)?;
            match (number(&v), digits) {
                (Some(Num::Int(n)), None) => PyValue::Int(n),
                (Some(n), None) => PyValue::Int(round_half_even(n.as_f64()) as i128),
                (Some(n), Some(PyValue::Int(d))) if (-20..=20).contains(&d) => {
                    let scale = 10f64.powi(d as i32);
                    PyValue::Float(round_half_even(n.as_f64() * scale) / scale)
                }
                _ => return raise(format!("TypeError: round() cannot round a {}", v.type_name())),
            }
        }
        "range" => {
            let ints: Vec<i128> = values
                .iter()
                .map(|v| match v {
                    PyValue::Int(n) => Ok(*n),
                    PyValue::Bool(b) => Ok(*b as i128),
                    other => {
                        raise(format!("TypeError: '{}' object cannot be interpreted as an integer", other.type_name()))
                    }
                })
                .collect::<PyResult<_>>()?;
            let (start, stop, step) = match ints[..] {
                [stop] => (0, stop, 1),
                [start, stop] => (start, stop, 1),
                [start, stop, step] if step != 0 => (start, stop, step),
                _ => return raise("TypeError: range() takes 1 to 3 integers (step not 0)"),
            };
            let (span, stride) = if step > 0 { (stop - start, step) } else { (start - stop, -step) };
            let count = if span <= 0 { 0 } else { (span + stride - 1) / stride };
            if count > MAX_RANGE {
                return raise(format!("ValueError: range() of more than {MAX_RANGE} items"));
            }
            PyValue::List((0..count).map(|i| PyValue::Int(start + i * step)).collect())
        }
        "sum" => {
            check_keywords(&[])?;
            let mut total = if values.len() == 2 { values.pop().expect("len 2") } else { PyValue::Int(0) };
            for item in PyValue::iterate(&one(&mut values)?)? {
                total = binary(BinOp::Add, &total, &item)?;
            }
            total
        }
        "min" | "max" => {
            check_keywords(&["default"])?;
            let items = if values.len() == 1 { PyValue::iterate(&values[0])? } else { values };
            let want = if name == "min" { Ordering::Less } else { Ordering::Greater };
            let mut best: Option<PyValue> = None;
            for item in items {
                best = Some(match best {
                    Some(b) if order(&item, &b)? != want => b,
                    _ => item,
                });
            }
            match (best, keyword(named, "default")) {
                (Some(b), _) => b,
                (None, Some(d)) => d.clone(),
                (None, None) => return raise(format!("ValueError: {name}() arg is an empty sequence")),
            }
        }
        "all" => PyValue::Bool(PyValue::iterate(&one(&mut values)?)?.iter().all(truthy)),
        "any" => PyValue::Bool(PyValue::iterate(&one(&mut values)?)?.iter().any(truthy)),
        "sorted" => {
            check_keywords(&["reverse"])?;
            let mut items = PyValue::iterate(&one(&mut values)?)?;
            let mut failure = None;
            items.sort_by(|a, b| {
                order(a, b).unwrap_or_else(|e| {
                    failure.get_or_insert(e);
                    Ordering::Equal
                })
            });
            if let Some(e) = failure {
                return Err(e);
            }
            if keyword(named, "reverse").is_some_and(truthy) {
                items.reverse();
            }
            PyValue::List(items)
        }
        "approx" => {
            check_keywords(&["tol"])?;
            let tol = match keyword(named, "tol").map(number) {
                None => 1e-6,
                Some(Some(n)) => n.as_f64(),
                Some(None) => return raise("TypeError: approx(tol=...) must be a number"),
            };
            let [a, b] = take_args::<2>(name, &mut values, &[])?;
            PyValue::Bool(approx(&a, &b, tol))
        }
        "type" => return raise("TypeError: type(x) is only supported as type(x).__name__"),
        other => return raise(format!("NameError: name '{other}' is not defined")),
    })
}

fn call_method(of: &PyValue, method: &str, mut values: Vec<PyValue>, named: &[(&str, PyValue)]) -> PyResult<PyValue> {
    let no_attribute = || raise(format!("AttributeError: '{}' object has no attribute '{method}'", of.type_name()));
    if !named.is_empty() {
        return raise(format!("TypeError: {method}() takes no keyword arguments here"));
    }
    let text = match of {
        PyValue::Str(s) => Some(s.as_str()),
        _ => None,
    };
    Ok(match (of, method, values.len()) {
        (PyValue::Dict(pairs), "get", 1 | 2) => {
            let default = if values.len() == 2 { values.pop().expect("len 2") } else { PyValue::None };
            let key = values.pop().expect("len 1");
            hash_check(&key)?;
            pairs.iter().find(|(k, _)| k.py_eq(&key)).map(|(_, v)| v.clone()).unwrap_or(default)
        }
        (PyValue::Dict(pairs), "keys", 0) => PyValue::List(pairs.iter().map(|(k, _)| k.clone()).collect()),
        (PyValue::Dict(pairs), "values", 0) => PyValue::List(pairs.iter().map(|(_, v)| v.clone()).collect()),
        (PyValue::Dict(pairs), "items", 0) => {
            PyValue::List(pairs.iter().map(|(k, v)| PyValue::Tuple(vec![k.clone(), v.clone()])).collect())
        }
        (PyValue::List(items) | PyValue::Tuple(items), "count", 1) => {
            PyValue::Int(items.iter().filter(|x| x.py_eq(&values[0])).count() as i128)
        }
        (PyValue::List(items) | PyValue::Tuple(items), "index", 1) => {
            match items.iter().position(|x| x.py_eq(&values[0])) {
                Some(i) => PyValue::Int(i as i128),
                None => return raise(format!("ValueError: {} is not in {}", repr(&values[0]), of.type_name())),
            }
        }
        (PyValue::Str(_), "lower", 0) => PyValue::Str(text.unwrap_or_default().to_lowercase()),
        (PyValue::Str(_), "upper", 0) => PyValue::Str(text.unwrap_or_default().to_uppercase()),
        (PyValue::Str(_), "strip", 0) => PyValue::Str(text.unwrap_or_default().trim().to_string()),
        (PyValue::Str(_), "split", 0) => {
            PyValue::List(text.unwrap_or_default().split_whitespace().map(|p| PyValue::Str(p.into())).collect())
        }
        (PyValue::Str(_), "split", 1) => match &values[0] {
            PyValue::Str(sep) if !sep.is_empty() => {
                PyValue::List(text.unwrap_or_default().split(sep.as_str()).map(|p| PyValue::Str(p.into())).collect())
            }
            _ => return raise("ValueError: split() needs a non-empty str separator"),
        },
        (PyValue::Str(_), "startswith" | "endswith" | "count", 1) => {
            let PyValue::Str(needle) = &values[0] else {
                return raise(format!("TypeError: {method}() needs a str, not {}", values[0].type_name()));
            };
            let s = text.unwrap_or_default();
            match method {
                "startswith" => PyValue::Bool(s.starts_with(needle.as_str())),
                "endswith" => PyValue::Bool(s.ends_with(needle.as_str())),
                _ if needle.is_empty() => PyValue::Int(s.chars().count() as i128 + 1),
                _ => PyValue::Int(s.matches(needle.as_str()).count() as i128),
            }
        }
        (PyValue::Str(sep), "join", 1) => {
            let mut parts = Vec::new();
            for item in PyValue::iterate(&values[0])? {
                match item {
                    PyValue::Str(s) => parts.push(s),
                    other => {
                        return raise(format!(
                            "TypeError: sequence item: expected str instance, {} found",
                            other.type_name()
                        ));
                    }
                }
            }
            PyValue::Str(parts.join(sep))
        }
        _ if has_method(of, method) => return raise(format!("TypeError: wrong number of arguments for {method}()")),
        _ => return no_attribute(),
    })
}

fn has_method(of: &PyValue, method: &str) -> bool {
    match of {
        PyValue::Dict(_) => matches!(method, "get" | "keys" | "values" | "items"),
        PyValue::List(_) | PyValue::Tuple(_) => matches!(method, "count" | "index"),
        PyValue::Str(_) => {
            matches!(method, "lower" | "upper" | "strip" | "split" | "startswith" | "endswith" | "count" | "join")
        }
        _ => false,
    }
}

// --- Python semantics over PyValue -------------------------------------------------------

#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Float(f) => f,
        }
    }
}

fn number(value: &PyValue) -> Option<Num> {
    match value {
        PyValue::Bool(b) => Some(Num::Int(*b as i128)),
        PyValue::Int(n) => Some(Num::Int(*n)),
        PyValue::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

pub fn truthy(value: &PyValue) -> bool {
    match value {
        PyValue::None => false,
        PyValue::Bool(b) => *b,
        PyValue::Int(n) => *n != 0,
        PyValue::BigInt(_) => true,
        PyValue::Float(f) => *f != 0.0,
        PyValue::Str(s) => !s.is_empty(),
        PyValue::Surrogates(p) => !p.is_empty(),
        PyValue::List(v) | PyValue::Tuple(v) => !v.is_empty(),
        PyValue::Dict(p) => !p.is_empty(),
        // An object whose truth is its own business (it could say anything): never true.
        PyValue::Opaque(_) => false,
    }
}

/// A rough cost of handling a value, in items, for the work bound.
fn size_hint(value: &PyValue) -> u64 {
    match value {
        PyValue::List(v) | PyValue::Tuple(v) => v.len() as u64,
        PyValue::Dict(p) => p.len() as u64,
        PyValue::Str(s) => s.len() as u64 / 16,
        _ => 0,
    }
}

fn hash_check(value: &PyValue) -> PyResult<()> {
    if value.hashable() { Ok(()) } else { raise(format!("TypeError: unhashable type: '{}'", value.type_name())) }
}

fn insert(pairs: &mut Vec<(PyValue, PyValue)>, key: PyValue, value: PyValue) -> PyResult<()> {
    hash_check(&key)?;
    match pairs.iter_mut().find(|(k, _)| k.py_eq(&key)) {
        Some(pair) => pair.1 = value,
        None => pairs.push((key, value)),
    }
    Ok(())
}

fn getitem(of: &PyValue, key: &PyValue) -> PyResult<PyValue> {
    match of {
        PyValue::Dict(pairs) => {
            hash_check(key)?;
            pairs
                .iter()
                .find(|(k, _)| k.py_eq(key))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| PyError(format!("KeyError: {}", repr(key))))
        }
        PyValue::List(_) | PyValue::Tuple(_) | PyValue::Str(_) | PyValue::Surrogates(_) => match key {
            PyValue::Int(n) => of.index((*n).clamp(i64::MIN as i128, i64::MAX as i128) as i64),
            PyValue::Bool(b) => of.index(*b as i64),
            other => {
                raise(format!("TypeError: {} indices must be integers, not {}", of.type_name(), other.type_name()))
            }
        },
        other => raise(format!("TypeError: '{}' object is not subscriptable", other.type_name())),
    }
}

fn slice(of: &PyValue, start: Option<i128>, stop: Option<i128>) -> PyResult<PyValue> {
    let bounds = |len: usize| {
        let fix = |i: i128| if i < 0 { (len as i128 + i).max(0) } else { i.min(len as i128) } as usize;
        let (a, b) = (start.map(fix).unwrap_or(0), stop.map(fix).unwrap_or(len));
        (a, b.max(a))
    };
    Ok(match of {
        PyValue::List(v) => {
            let (a, b) = bounds(v.len());
            PyValue::List(v[a..b].to_vec())
        }
        PyValue::Tuple(v) => {
            let (a, b) = bounds(v.len());
            PyValue::Tuple(v[a..b].to_vec())
        }
        PyValue::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let (a, b) = bounds(chars.len());
            PyValue::Str(chars[a..b].iter().collect())
        }
        other => return raise(format!("TypeError: '{}' object is not subscriptable", other.type_name())),
    })
}

fn binary(op: BinOp, left: &PyValue, right: &PyValue) -> PyResult<PyValue> {
    let symbol = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::FloorDiv => "//",
        BinOp::Mod => "%",
    };
    let unsupported = || {
        raise(format!(
            "TypeError: unsupported operand type(s) for {symbol}: '{}' and '{}'",
            left.type_name(),
            right.type_name()
        ))
    };
    let overflow = || PyError("OverflowError: integer result too large".into());
    if let (Some(a), Some(b)) = (number(left), number(right)) {
        return Ok(match (op, a, b) {
            (BinOp::Div, _, b) if b.as_f64() == 0.0 => return raise("ZeroDivisionError: division by zero"),
            (BinOp::FloorDiv | BinOp::Mod, _, Num::Int(0)) => {
                return raise("ZeroDivisionError: integer division or modulo by zero");
            }
            (BinOp::FloorDiv | BinOp::Mod, _, Num::Float(0.0)) => {
                return raise("ZeroDivisionError: float floor division by zero");
            }
            (BinOp::Add, Num::Int(a), Num::Int(b)) => PyValue::Int(a.checked_add(b).ok_or_else(overflow)?),
            (BinOp::Sub, Num::Int(a), Num::Int(b)) => PyValue::Int(a.checked_sub(b).ok_or_else(overflow)?),
            (BinOp::Mul, Num::Int(a), Num::Int(b)) => PyValue::Int(a.checked_mul(b).ok_or_else(overflow)?),
            (BinOp::FloorDiv, Num::Int(a), Num::Int(b)) => {
                PyValue::Int(a.div_euclid(b) - i128::from(b < 0 && a.rem_euclid(b) != 0))
            }
            (BinOp::Mod, Num::Int(a), Num::Int(b)) => {
                let r = a % b;
                PyValue::Int(if r != 0 && (r < 0) != (b < 0) { r + b } else { r })
            }
            (op, a, b) => {
                let (a, b) = (a.as_f64(), b.as_f64());
                PyValue::Float(match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                    BinOp::FloorDiv => (a / b).floor(),
                    BinOp::Mod => a - b * (a / b).floor(),
                })
            }
        });
    }
    match (op, left, right) {
        (BinOp::Add, PyValue::Str(a), PyValue::Str(b)) => Ok(PyValue::Str(format!("{a}{b}"))),
        (BinOp::Add, PyValue::List(a), PyValue::List(b)) => Ok(PyValue::List([a.clone(), b.clone()].concat())),
        (BinOp::Add, PyValue::Tuple(a), PyValue::Tuple(b)) => Ok(PyValue::Tuple([a.clone(), b.clone()].concat())),
        (BinOp::Mul, PyValue::Str(_) | PyValue::List(_), PyValue::Int(_))
        | (BinOp::Mul, PyValue::Int(_), PyValue::Str(_) | PyValue::List(_)) => {
            let (seq, n) = match (left, right) {
                (PyValue::Int(n), seq) | (seq, PyValue::Int(n)) => (seq, (*n).max(0) as usize),
                _ => unreachable!("matched above"),
            };
            if n.saturating_mul(size_hint(seq).max(1) as usize) > MAX_RANGE as usize * 10 {
                return raise("MemoryError: the repeated sequence would be too long");
            }
            Ok(match seq {
                PyValue::Str(s) => PyValue::Str(s.repeat(n)),
                PyValue::List(items) => PyValue::List(items.iter().cycle().take(items.len() * n).cloned().collect()),
                _ => unreachable!("matched above"),
            })
        }
        _ => unsupported(),
    }
}

/// Python's ordering for `<` and friends: numbers with numbers, str with str, sequences of the
/// same kind item by item; anything else raises.
fn order(a: &PyValue, b: &PyValue) -> PyResult<Ordering> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return Ok(match (x, y) {
            (Num::Int(x), Num::Int(y)) => x.cmp(&y),
            (x, y) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        });
    }
    match (a, b) {
        (PyValue::Str(x), PyValue::Str(y)) => Ok(x.cmp(y)),
        (PyValue::List(x), PyValue::List(y)) | (PyValue::Tuple(x), PyValue::Tuple(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !p.py_eq(q) {
                    return order(p, q);
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => raise(format!(
            "TypeError: '<' not supported between instances of '{}' and '{}'",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn compare(op: CmpOp, a: &PyValue, b: &PyValue) -> PyResult<bool> {
    // NaN compares false with everything, as in Python.
    let nan = |v: &PyValue| matches!(v, PyValue::Float(f) if f.is_nan());
    Ok(match op {
        CmpOp::Eq => a.py_eq(b),
        CmpOp::Ne => !a.py_eq(b),
        CmpOp::In => b.contains(a)?,
        CmpOp::NotIn => !b.contains(a)?,
        // Only `x is None` / `x is True` mean anything for plain data.
        CmpOp::Is | CmpOp::IsNot => {
            let same = match (a, b) {
                (PyValue::None, PyValue::None) => true,
                (PyValue::Bool(x), PyValue::Bool(y)) => x == y,
                (PyValue::None | PyValue::Bool(_), _) | (_, PyValue::None | PyValue::Bool(_)) => false,
                _ => return raise("TypeError: 'is' is only supported with None, True and False"),
            };
            same == (op == CmpOp::Is)
        }
        _ if nan(a) || nan(b) => {
            order(a, b)?;
            false
        }
        CmpOp::Lt => order(a, b)? == Ordering::Less,
        CmpOp::Le => order(a, b)? != Ordering::Greater,
        CmpOp::Gt => order(a, b)? == Ordering::Greater,
        CmpOp::Ge => order(a, b)? != Ordering::Less,
    })
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 { 2.0 * (x / 2.0).round() } else { r }
}

/// Equal, with floats (and ints compared with floats) within `tol`, recursing into containers.
pub fn approx(a: &PyValue, b: &PyValue, tol: f64) -> bool {
    match (number(a), number(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => return x == y,
        (Some(x), Some(y)) => {
            let (x, y) = (x.as_f64(), y.as_f64());
            return x == y || (x - y).abs() <= tol * 1f64.max(x.abs().max(y.abs()));
        }
        _ => {}
    }
    match (a, b) {
        (PyValue::List(x), PyValue::List(y)) | (PyValue::Tuple(x), PyValue::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| approx(p, q, tol))
        }
        (PyValue::Dict(x), PyValue::Dict(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.iter().find(|(l, _)| l.py_eq(k)).is_some_and(|(_, w)| approx(v, w, tol)))
        }
        _ => a.py_eq(b),
    }
}

/// Python's `str(x)`.
pub fn py_str(value: &PyValue) -> String {
    match value {
        PyValue::Str(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr(x)`, close enough to read (and exact for ints, strs and containers).
pub fn repr(value: &PyValue) -> String {
    match value {
        PyValue::None => "None".into(),
        PyValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        PyValue::Int(n) => n.to_string(),
        PyValue::BigInt(digits) => digits.clone(),
        PyValue::Float(f) => float_repr(*f),
        PyValue::Str(s) => str_repr(s.chars().map(u32::from)),
        PyValue::Surrogates(points) => str_repr(points.iter().copied()),
        PyValue::List(items) => format!("[{}]", items.iter().map(repr).collect::<Vec<_>>().join(", ")),
        PyValue::Tuple(items) if items.len() == 1 => format!("({},)", repr(&items[0])),
        PyValue::Tuple(items) => format!("({})", items.iter().map(repr).collect::<Vec<_>>().join(", ")),
        PyValue::Dict(pairs) => format!(
            "{{{}}}",
            pairs.iter().map(|(k, v)| format!("{}: {}", repr(k), repr(v))).collect::<Vec<_>>().join(", ")
        ),
        PyValue::Opaque(name) => format!("<{name} object>"),
    }
}

fn float_repr(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else if f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f:?}")
    }
}

fn str_repr(points: impl Iterator<Item = u32> + Clone) -> String {
    let has_single = points.clone().any(|p| p == '\'' as u32);
    let has_double = points.clone().any(|p| p == '"' as u32);
    let quote = if has_single && !has_double { '"' } else { '\'' };
    let mut out = String::from(quote);
    for p in points {
        match char::from_u32(p) {
            Some('\\') => out.push_str("\\\\"),
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some('\t') => out.push_str("\\t"),
            Some(c) if c == quote => {
                out.push('\\');
                out.push(c);
            }
            Some(c) if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{p:02x}")),
            Some(c) => out.push(c),
            None => out.push_str(&format!("\\u{p:04x}")),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars(Vec<(&'static str, PyValue)>);

    impl Names for Vars {
        fn lookup(&self, name: &str, _: &Evaluator) -> Option<PyResult<PyValue>> {
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| Ok(v.clone()))
        }
    }

    fn eval_with(text: &str, vars: &[(&'static str, PyValue)]) -> PyResult<PyValue> {
        let names = Vars(vars.to_vec());
        Evaluator::new(&names).eval(&parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    fn eval(text: &str) -> PyResult<PyValue> {
        eval_with(text, &[])
    }

    fn yes(text: &str) {
        assert_eq!(eval(text), Ok(PyValue::Bool(true)), "{text}");
    }

    fn raises(text: &str) {
        assert!(eval(text).is_err(), "{text} should raise, gave {:?}", eval(text));
    }

    #[test]
    fn python_equality_and_arithmetic() {
        for text in [
            "True == 1",
            "0.0 == 0",
            "None != 0",
            "'10' != 10",
            "[1, 2] != (1, 2)",
            "(1, 2) == (1.0, 2)",
            "1 + 2 * 3 == 7",
            "7 // 2 == 3 and -7 // 2 == -4 and -7 % 3 == 2",
            "abs(2.95 - 2.9500001) < 0.01",
            "1 < 2 <= 2 < 3",
            "not (1 > 2)",
            "'a' + 'b' == 'ab'",
            "[1] + [2] == [1, 2]",
            "(1 if False else 2) == 2",
            "[x * 2 for x in range(3)] == [0, 2, 4]",
            "[x for x in range(10) if x % 2 if x > 4] == [5, 7, 9]",
            "[(k, v) for k, v in {'a': 1}.items()] == [('a', 1)]",
            "[a + b for a in (1, 2) for b in (10, 20)] == [11, 21, 12, 22]",
            "all(k in {'a': 1, 'b': 2} for k in ('a', 'b'))",
            "not any([])",
            "len(set([1, 1.0, True, 2])) == 2",
            "sorted([3, 1, 2], reverse=True) == [3, 2, 1]",
            "sum([1, 2.5]) == 3.5",
            "max([1, 5, 3]) == 5 and min(4, 2) == 2",
            "round(2.5) == 2 and round(2.675, 1) == 2.7",
            "isinstance(True, int) and not isinstance(1, bool) and isinstance(1.0, (int, float))",
            "isinstance({}, dict) and not isinstance([], tuple)",
            "type([]).__name__ == 'list' and type(None).__name__ == 'NoneType'",
            "'ab'[-1] == 'b' and [1, 2, 3][1:] == [2, 3] and [1, 2, 3][:-1] == [1, 2]",
            "{'a': 1}.get('b') is None and {'a': 1}.get('b', 7) == 7",
            "'; '.join(['a', 'b']) == 'a; b'",
            "short('x' * 100) == repr('x' * 100)[:60]",
            "str(2.0) == '2.0' and str(None) == 'None' and repr('it\\'s') == '\"it\\'s\"'",
            "approx([1.0, {'a': 2.0000001}], [1, {'a': 2}])",
            "not approx([1.0], [1.1])",
            "approx(1.0, 1.05, tol=0.1)",
            "int('42') == 42 and float('2.5') == 2.5",
            "[1, 2].index(2) == 1 and 'a-b'.split('-') == ['a', 'b']",
            "'abc'.startswith('ab') and 2 not in [1, 3] and 'b' in 'abc'",
            "(1,) == tuple([1]) and dict(a=1) == {'a': 1}",
        ] {
            yes(text);
        }
    }

    #[test]
    fn what_raises_in_python_raises_here() {
        for text in [
            "[].get('x')",
            "len(3)",
            "[][0]",
            "'2.75' - 2.75",
            "None - 1",
            "1 / 0",
            "{}['x']",
            "set([[1]])",
            "1 < 'a'",
            "'a' in 1",
            "1 in 'a'",
            "undefined_name",
            "int('x')",
            "max([])",
            "range(10000000)",
            "sum(['a'])",
            "type(1)",
            "len",
        ] {
            raises(text);
        }
        // `and`/`or` short-circuit, as in Python: the raising side is never evaluated.
        yes("False and [].get('x') == 1 or True");
    }

    #[test]
    fn opaque_values_earn_nothing() {
        let liar = PyValue::Opaque("Liar".into());
        let vars = [("result", liar)];
        assert_eq!(eval_with("result == 0", &vars), Ok(PyValue::Bool(false)));
        assert_eq!(eval_with("bool(result)", &vars), Ok(PyValue::Bool(false)));
        assert!(eval_with("result.get('a')", &vars).is_err());
        assert!(eval_with("result - 1", &vars).is_err());
        assert!(eval_with("len(result)", &vars).is_err());
    }

    #[test]
    fn work_is_bounded() {
        assert!(eval("[[a * b for a in range(100000)] for b in range(100000)]").is_err());
    }

    #[test]
    fn syntax_errors_say_where() {
        for (text, at) in [("1 +", 3), ("f(a=1, 2)", 7), ("[1, 2", 5), ("x ** 2", 2), ("'open", 0), ("a b", 2)] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.at, at, "{text}: {error}");
        }
    }

    #[test]
    fn templates_render_values_and_keep_braces() {
        let vars = [("n", PyValue::Int(3)), ("s", PyValue::Str("x}".into()))];
        let names = Vars(vars.to_vec());
        let template = parse_template("{n} of {{3}}, {s}, {'}'}, {missing}").unwrap();
        let text = Evaluator::new(&names).render(&template);
        assert_eq!(text, "3 of {3}, x}, }, <NameError: name 'missing' is not defined>");
        assert!(parse_template("a } b").is_err());
        assert!(parse_template("a {b").is_err());
        assert_eq!(parse_template("{1 +}").unwrap_err().at, 4);
    }

    #[test]
    fn repr_matches_python() {
        let v = eval("[None, True, 1, 2.5, 10.0, 'a\\'b', ('x',), {'k': -1}]").unwrap();
        assert_eq!(repr(&v), "[None, True, 1, 2.5, 10.0, \"a'b\", ('x',), {'k': -1}]");
        assert_eq!(repr(&PyValue::Surrogates(vec![0xd800])), "'\\ud800'");
        assert_eq!(repr(&PyValue::Float(1e300)), "1e300");
    }
}
