//! Jepsen histories: a reader for `history.edn`.
//!
//! A Jepsen history is a stream of EDN forms, one operation map per form
//! (usually one per line):
//!
//! ```text
//! {:type :invoke, :f :cas, :value [1 2], :process 3, :time 1523000000, :index 7}
//! #jepsen.history.Op{:index 8, :time 1524100000, :type :ok, :process 3, :f :cas, :value [1 2]}
//! ```
//!
//! [`read_edn_history`] parses the stream and turns each operation into an
//! [`Event`]; [`parse_edn`] gives the EDN forms themselves.
//!
//! # The EDN accepted
//!
//! Everything of the EDN specification: `nil`, `true`/`false`, strings with
//! escapes (`\t \r \n \\ \" \b \f \uXXXX`), characters (`\a`, `\newline`,
//! `\u0041`, …), integers (with an `N` suffix for big ones), floats (with an `M`
//! suffix for decimals), keywords, symbols, lists, vectors, maps, sets `#{}`,
//! comments (`;` to the end of the line), commas as whitespace, `#_` discards and
//! tagged elements `#tag form`. A few things Clojure prints are accepted too:
//! records (`#jepsen.history.Op{…}`, a tagged map), ratios (`1/3`, read as a
//! float), `##Inf`, `##-Inf`, `##NaN`, and namespaced maps (`#:ns{:a 1}`).
//! Nesting deeper than [`MAX_DEPTH`] is refused rather than risking the stack.
//!
//! # From an operation map to an event
//!
//! | key | becomes |
//! |---|---|
//! | `:index` | [`Event::index`]; when absent, the op's position in the stream (from 0) |
//! | `:time` | [`Event::time`], nanoseconds; 0 when absent |
//! | `:process` | a non-negative integer → [`Process::Client`], a keyword, string or symbol such as `:nemesis` → [`Process::Named`] |
//! | `:type` | `:invoke`, `:ok`, `:fail`, `:info` (keyword or string) |
//! | `:f` | the keyword's name (`:cas` → `"cas"`, `:txn/read` → `"txn/read"`), a string or symbol as is |
//! | `:value` | JSON ([`Edn::to_json`]); `null` when absent |
//! | `:node` | [`Event::node`], when a string, keyword or symbol |
//! | `:error` | [`Event::error`]: a string as is, a keyword by name, anything else as its EDN text |
//!
//! Other keys are ignored. A tagged form is read as the form it tags (a record is
//! its map). A stream that is a single vector or list of maps, or a single map
//! `{:history [...]}` (as many tools save a history), is read as one op per
//! element. Knossos's test tuples (`[0 :invoke :write 0]`) are refused with a
//! message naming the map form expected. Every error names the 1-based line and column where the offending
//! form starts (or where the text stops making sense); no input makes the reader
//! panic.

use std::fmt;
use std::io::BufRead;

use serde_json::Value;

use crate::event::{Event, EventType, Process};
use crate::history::{History, HistoryError};

/// How deeply forms may nest. Jepsen values are shallow; a limit keeps the
/// recursive parser (and everything that walks its output) off the end of the
/// stack whatever the input.
pub const MAX_DEPTH: usize = 128;

/// One EDN form.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits an `i64`, with or without the `N` suffix.
    Int(i64),
    /// An integer that does not fit an `i64`, or one written with the `N` suffix
    /// that does not: its decimal digits, with a leading `-` when negative.
    BigInt(String),
    /// A float; decimals (`1.5M`) and ratios (`1/3`) are read as floats too.
    Float(f64),
    /// A character literal: `\a`, `\newline`, `\u0041`.
    Char(char),
    /// A string, escapes decoded.
    String(String),
    /// Without the colon: `:cas` is `Keyword("cas")`, `:a/b` is `Keyword("a/b")`.
    Keyword(String),
    /// A bare name other than `nil`, `true` and `false`: `foo`, `a.b/c`.
    Symbol(String),
    /// `(…)`, elements in the order written.
    List(Vec<Edn>),
    /// `[…]`, elements in the order written.
    Vector(Vec<Edn>),
    /// Key-value pairs in the order written (duplicates kept).
    Map(Vec<(Edn, Edn)>),
    /// `#{…}`, elements in the order written (duplicates kept).
    Set(Vec<Edn>),
    /// `#tag form`; a Clojure record `#a.b.C{…}` is `Tagged("a.b.C", Map(…))`.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The form as JSON: `nil` → `null`, keywords and symbols → their name as a
    /// string, characters → one-character strings, lists, vectors and sets →
    /// arrays, maps → objects (keys as strings: a keyword or symbol by name, a
    /// string as is, anything else as its JSON text; a later duplicate key wins),
    /// a tagged form → the form it tags. A big integer that fits a `u64` is a
    /// number, otherwise a string of its digits; a float that JSON cannot hold
    /// (`##NaN`, `##Inf`) is `null`.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(n) => Value::from(*n),
            Edn::BigInt(digits) => match digits.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(digits.clone()),
            },
            Edn::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::String(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::List(items) | Edn::Vector(items) | Edn::Set(items) => {
                Value::Array(items.iter().map(Edn::to_json).collect())
            }
            Edn::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.key_string(), v.to_json()))
                    .collect(),
            ),
            Edn::Tagged(_, form) => form.to_json(),
        }
    }

    /// The form as a JSON object key.
    fn key_string(&self) -> String {
        match self {
            Edn::String(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            Edn::Tagged(_, form) => form.key_string(),
            other => other.to_json().to_string(),
        }
    }

    /// The tagged form under any tags.
    fn untagged(&self) -> &Edn {
        let mut form = self;
        while let Edn::Tagged(_, inner) = form {
            form = inner;
        }
        form
    }

    /// What kind of form this is, for messages: `"a vector"`.
    fn kind(&self) -> &'static str {
        match self {
            Edn::Nil => "nil",
            Edn::Bool(_) => "a boolean",
            Edn::Int(_) | Edn::BigInt(_) => "an integer",
            Edn::Float(_) => "a float",
            Edn::Char(_) => "a character",
            Edn::String(_) => "a string",
            Edn::Keyword(_) => "a keyword",
            Edn::Symbol(_) => "a symbol",
            Edn::List(_) => "a list",
            Edn::Vector(_) => "a vector",
            Edn::Map(_) => "a map",
            Edn::Set(_) => "a set",
            Edn::Tagged(..) => "a tagged element",
        }
    }
}

/// EDN text (not necessarily as written: floats and strings are normalized).
impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(n) => write!(f, "{n}"),
            Edn::BigInt(digits) => write!(f, "{digits}N"),
            Edn::Float(x) if x.is_nan() => f.write_str("##NaN"),
            Edn::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "##Inf" } else { "##-Inf" })
            }
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Char(c) => match c {
                '\n' => f.write_str("\\newline"),
                ' ' => f.write_str("\\space"),
                '\t' => f.write_str("\\tab"),
                '\r' => f.write_str("\\return"),
                c => write!(f, "\\{c}"),
            },
            // JSON string escapes are valid EDN ones.
            Edn::String(s) => write!(f, "{}", Value::String(s.clone())),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(items) => seq(f, "(", items, ")"),
            Edn::Vector(items) => seq(f, "[", items, "]"),
            Edn::Set(items) => seq(f, "#{", items, "}"),
            Edn::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, form) => {
                if matches!(**form, Edn::Map(_)) {
                    write!(f, "#{tag}{form}")
                } else {
                    write!(f, "#{tag} {form}")
                }
            }
        }
    }
}

/// Parses a whole EDN stream into its top-level forms.
pub fn parse_edn(text: &str) -> Result<Vec<Edn>, HistoryError> {
    let mut parser = Parser::new(text);
    let mut forms = Vec::new();
    loop {
        match parser.top_level_form() {
            Ok(Some((_, form))) => forms.push(form),
            Ok(None) => return Ok(forms),
            Err(e) => return Err(e.into_history_error(text)),
        }
    }
}

/// Reads a Jepsen `history.edn` (see the module documentation). The whole input
/// is read first; it must be UTF-8.
pub fn read_edn_history(mut reader: impl BufRead) -> Result<History, HistoryError> {
    let mut bytes = Vec::new();
    if let Err(source) = reader.read_to_end(&mut bytes) {
        let line = 1 + bytes.iter().filter(|&&b| b == b'\n').count();
        return Err(HistoryError::Io { line, source });
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let (line, column) = line_column(&bytes, e.valid_up_to());
            return Err(HistoryError::Parse {
                line,
                column,
                message: "invalid UTF-8".to_owned(),
            });
        }
    };
    parse_edn_history(text)
}

/// [`read_edn_history`] of a string.
pub fn parse_edn_history(text: &str) -> Result<History, HistoryError> {
    let fail = |e: ParseError| e.into_history_error(text);
    let mut parser = Parser::new(text);
    let mut events = Vec::new();
    let mut first = true;
    while let Some((offset, form)) = parser.top_level_form().map_err(fail)? {
        // A history written as one vector (or list) of op maps, or as a map
        // holding one under :history.
        if first {
            first = false;
            let offsets = std::mem::take(&mut parser.child_offsets);
            let grandchildren = std::mem::take(&mut parser.grandchild_offsets);
            let whole = parser.at_end().map_err(fail)?;
            let ops = match &form {
                Edn::Vector(items) | Edn::List(items) if whole && !is_tuple(items) => {
                    Some((items, offsets))
                }
                Edn::Map(pairs) if whole => history_in(pairs).map(|(child, items)| {
                    let offsets = grandchildren
                        .iter()
                        .filter(|&&(parent, _)| parent == child)
                        .map(|&(_, at)| at)
                        .collect();
                    (items, offsets)
                }),
                _ => None,
            };
            if let Some((items, offsets)) = ops {
                for (i, item) in items.iter().enumerate() {
                    let at = offsets.get(i).copied().unwrap_or(offset);
                    events.push(event_of(item, i).map_err(|message| {
                        fail(ParseError {
                            offset: at,
                            message,
                        })
                    })?);
                }
                return Ok(History { events });
            }
        }
        let position = events.len();
        let event =
            event_of(&form, position).map_err(|message| fail(ParseError { offset, message }))?;
        events.push(event);
    }
    Ok(History { events })
}

/// The ops of a map `{:history [...]}` (a later duplicate key wins), with the
/// position of the vector among the map's forms (keys and values).
fn history_in(pairs: &[(Edn, Edn)]) -> Option<(usize, &Vec<Edn>)> {
    let (j, (_, v)) = pairs
        .iter()
        .enumerate()
        .rev()
        .find(|(_, (k, _))| matches!(k, Edn::Keyword(k) if k == "history"))?;
    match v {
        Edn::Vector(items) | Edn::List(items) => Some((2 * j + 1, items)),
        _ => None,
    }
}

/// Whether `items` is Knossos's test tuple `[process type f value]`, as in
/// `[0 :invoke :write 0]`.
fn is_tuple(items: &[Edn]) -> bool {
    matches!(items, [_, Edn::Keyword(t), _, ..] if matches!(t.as_str(), "invoke" | "ok" | "fail" | "info"))
        && items.len() <= 4
}

/// Converts one operation form; the error is a message without position.
fn event_of(form: &Edn, position: usize) -> Result<Event, String> {
    let Edn::Map(pairs) = form.untagged() else {
        if let Edn::Vector(items) | Edn::List(items) = form.untagged()
            && is_tuple(items)
        {
            return Err(format!(
                "expected an operation map such as {{:process 0, :type :invoke, :f :write, :value 0}}, found {}: Knossos's test tuple [process type f value] is not read; write each operation as a map, in a file of one per line, one vector of them, or {{:history [...]}}",
                excerpt(form)
            ));
        }
        return Err(format!(
            "an operation must be a map, found {}: {}",
            form.kind(),
            excerpt(form)
        ));
    };
    // A later duplicate key wins, as in Clojure.
    let get = |name: &str| {
        pairs.iter().rev().find_map(|(k, v)| match k.untagged() {
            Edn::Keyword(k) | Edn::String(k) if k == name => Some(v.untagged()),
            _ => None,
        })
    };
    let present = |name: &str| get(name).filter(|v| **v != Edn::Nil);
    let non_negative = |name: &str| -> Result<Option<u64>, String> {
        let Some(v) = present(name) else {
            return Ok(None);
        };
        let n = match v {
            Edn::Int(n) => u64::try_from(*n).ok(),
            Edn::BigInt(digits) => digits.parse::<u64>().ok(),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            format!(
                ":{name} must be a non-negative integer, found {}",
                excerpt(v)
            )
        })
    };
    let name_of = |v: &Edn| match v {
        Edn::Keyword(s) | Edn::String(s) | Edn::Symbol(s) => Some(s.clone()),
        _ => None,
    };

    let index = non_negative("index")?.unwrap_or(position as u64);
    let time = non_negative("time")?.unwrap_or(0);
    let process = match present("process") {
        None => return Err("the operation has no :process".to_owned()),
        Some(Edn::Int(n)) if *n >= 0 => Process::Client(*n as u64),
        Some(v @ Edn::BigInt(digits)) => Process::Client(digits.parse::<u64>().map_err(|_| {
            format!(
                ":process must be a non-negative integer or a name, found {}",
                excerpt(v)
            )
        })?),
        Some(v) => Process::Named(name_of(v).ok_or_else(|| {
            format!(
                ":process must be a non-negative integer or a name, found {}",
                excerpt(v)
            )
        })?),
    };
    let kind = match present("type") {
        None => return Err("the operation has no :type".to_owned()),
        Some(v) => match name_of(v).as_deref() {
            Some("invoke") => EventType::Invoke,
            Some("ok") => EventType::Ok,
            Some("fail") => EventType::Fail,
            Some("info") => EventType::Info,
            _ => {
                return Err(format!(
                    ":type must be :invoke, :ok, :fail or :info, found {}",
                    excerpt(v)
                ));
            }
        },
    };
    let f = match present("f") {
        None => return Err("the operation has no :f".to_owned()),
        Some(v) => name_of(v).ok_or_else(|| {
            format!(
                ":f must be a keyword, string or symbol, found {}",
                excerpt(v)
            )
        })?,
    };
    let value = get("value").map_or(Value::Null, Edn::to_json);
    let node = present("node").and_then(name_of);
    let error = present("error").map(|v| match v {
        Edn::String(s) | Edn::Keyword(s) => s.clone(),
        other => other.to_string(),
    });
    Ok(Event {
        index,
        time,
        process,
        node,
        kind,
        f,
        value,
        error,
    })
}

/// A form's EDN text for a message, cut at 60 characters.
fn excerpt(form: &Edn) -> String {
    let text = form.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// 1-based line and column (in characters) of a byte offset. Works on any bytes
/// and any offset, so that reporting an error can never fail.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, column)
}

/// A parse error at a byte offset.
#[derive(Debug)]
struct ParseError {
    offset: usize,
    message: String,
}

impl ParseError {
    fn into_history_error(self, text: &str) -> HistoryError {
        let (line, column) = line_column(text.as_bytes(), self.offset);
        HistoryError::Parse {
            line,
            column,
            message: self.message,
        }
    }
}

type Parsed<T> = Result<T, ParseError>;

/// A recursive-descent reader over the bytes of a `str`. Every syntax character
/// of EDN is ASCII, so it scans bytes and only decodes characters inside strings
/// and character literals; it stops only on ASCII bytes, so every slice it takes
/// is on a character boundary.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// Offsets of the elements of the current top-level collection, so that ops
    /// of a history written as one vector can be located.
    child_offsets: Vec<usize>,
    /// Offsets of the elements of those elements, with the position of their
    /// parent among the top-level collection's: the ops of `{:history [...]}`.
    grandchild_offsets: Vec<(usize, usize)>,
    /// Whether the current top-level form is a map (only then are grandchildren
    /// located).
    top_is_map: bool,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'\x0b' | b'\x0c')
}

/// Bytes that end a symbol, keyword, number or tag.
fn is_delimiter(b: u8) -> bool {
    is_whitespace(b) || matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';')
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            child_offsets: Vec::new(),
            grandchild_offsets: Vec::new(),
            top_is_map: false,
        }
    }

    fn error<T>(&self, offset: usize, message: impl Into<String>) -> Parsed<T> {
        Err(ParseError {
            offset,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms.
    fn skip_ignored(&mut self) -> Parsed<()> {
        loop {
            match self.peek() {
                Some(b) if is_whitespace(b) => self.pos += 1,
                Some(b';') => {
                    while let Some(b) = self.peek() {
                        self.pos += 1;
                        if b == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'#') if self.peek_at(1) == Some(b'_') => {
                    // `form` counts the depth, so `#_#_#_…` cannot recurse
                    // without bound.
                    self.pos += 2;
                    self.form()?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Whether only ignorable text is left.
    fn at_end(&mut self) -> Parsed<bool> {
        self.skip_ignored()?;
        Ok(self.pos >= self.bytes.len())
    }

    /// The next top-level form and its offset, or `None` at the end.
    fn top_level_form(&mut self) -> Parsed<Option<(usize, Edn)>> {
        self.skip_ignored()?;
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        self.child_offsets.clear();
        self.grandchild_offsets.clear();
        self.top_is_map = self.peek() == Some(b'{');
        let at = self.pos;
        let form = self.form()?;
        Ok(Some((at, form)))
    }

    /// One form, starting at the current position (after ignorable text).
    fn form(&mut self) -> Parsed<Edn> {
        if self.depth >= MAX_DEPTH {
            return self.error(
                self.pos,
                format!("forms nest deeper than {MAX_DEPTH} levels"),
            );
        }
        self.depth += 1;
        let form = self.skip_ignored().and_then(|()| self.form_inner(self.pos));
        self.depth -= 1;
        form
    }

    fn form_inner(&mut self, at: usize) -> Parsed<Edn> {
        let Some(b) = self.peek() else {
            return self.error(at, "unexpected end of input");
        };
        match b {
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.elements(b')', at)?))
            }
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.elements(b']', at)?))
            }
            b'{' => {
                self.pos += 1;
                self.map(at, None)
            }
            b')' | b']' | b'}' => self.error(at, format!("unexpected {:?}", b as char)),
            b'"' => self.string().map(Edn::String),
            b'\\' => self.character(),
            b':' => {
                self.pos += 1;
                let name = self.token();
                if name.is_empty() || name == ":" || name.ends_with('/') {
                    return self.error(at, format!("invalid keyword \":{name}\""));
                }
                // `::k` (auto-resolved in Clojure) has no meaning outside a
                // namespace: read it as `:k`.
                Ok(Edn::Keyword(
                    name.strip_prefix(':').unwrap_or(name).to_owned(),
                ))
            }
            b'#' => self.dispatch(at),
            b'0'..=b'9' => self.number(at),
            b'+' | b'-' | b'.' if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.number(at)
            }
            _ => {
                let name = self.token();
                if name.is_empty() {
                    // A byte no form starts with (a stray backslash is handled
                    // above, so this is unreachable for valid UTF-8, but be safe).
                    self.pos += 1;
                    return self.error(at, "unexpected character");
                }
                Ok(match name {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => Edn::Symbol(name.to_owned()),
                })
            }
        }
    }

    /// Forms up to the closing byte; `open` is the offset of the opening one.
    fn elements(&mut self, close: u8, open: usize) -> Parsed<Vec<Edn>> {
        let mut items = Vec::new();
        loop {
            self.skip_ignored()?;
            match self.peek() {
                None => {
                    let opened = match self.bytes.get(open) {
                        Some(b'#') => "#{",
                        Some(b'(') => "(",
                        Some(b'[') => "[",
                        _ => "{",
                    };
                    return self.error(
                        open,
                        format!("{opened} is never closed: the input ends first"),
                    );
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b @ (b')' | b']' | b'}')) => {
                    return self.error(
                        self.pos,
                        format!(
                            "unexpected {:?}: expected {:?} to close the form at {}",
                            b as char,
                            close as char,
                            self.describe_offset(open)
                        ),
                    );
                }
                Some(_) => {
                    if self.depth == 1 {
                        self.child_offsets.push(self.pos);
                    } else if self.depth == 2
                        && self.top_is_map
                        && let Some(parent) = self.child_offsets.len().checked_sub(1)
                    {
                        self.grandchild_offsets.push((parent, self.pos));
                    }
                    items.push(self.form()?);
                }
            }
        }
    }

    fn describe_offset(&self, offset: usize) -> String {
        let (line, column) = line_column(self.bytes, offset);
        format!("line {line}, column {column}")
    }

    /// A map after its `{`; with `namespace`, keywords without one get it.
    fn map(&mut self, at: usize, namespace: Option<&str>) -> Parsed<Edn> {
        let items = self.elements(b'}', at)?;
        if items.len() % 2 != 0 {
            return self.error(
                at,
                format!("a map needs an even number of forms, found {}", items.len()),
            );
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            let k = match (namespace, k) {
                (Some(ns), Edn::Keyword(name)) if !name.contains('/') => {
                    Edn::Keyword(format!("{ns}/{name}"))
                }
                (Some(_), Edn::Keyword(name)) if name.starts_with("_/") => {
                    Edn::Keyword(name[2..].to_owned())
                }
                (_, k) => k,
            };
            pairs.push((k, v));
        }
        Ok(Edn::Map(pairs))
    }

    /// Bytes up to the next delimiter (possibly none).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        // Delimiters are ASCII, so `pos` is on a character boundary.
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// After `#`: sets, discards, symbolic values, namespaced maps, tags.
    fn dispatch(&mut self, at: usize) -> Parsed<Edn> {
        match self.peek_at(1) {
            Some(b'{') => {
                self.pos += 2;
                Ok(Edn::Set(self.elements(b'}', at)?))
            }
            Some(b'_') => {
                // Only reached when a form was required: discard, then read one.
                self.pos += 2;
                self.form()?;
                self.form()
            }
            Some(b'#') => {
                self.pos += 2;
                match self.token() {
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    other => self.error(at, format!("unknown symbolic value ##{other}")),
                }
            }
            Some(b':') => {
                self.pos += 2;
                let ns = self.token();
                if ns.is_empty() || self.peek() != Some(b'{') {
                    return self.error(at, "a namespaced map is written #:ns{…}");
                }
                let open = self.pos;
                self.pos += 1;
                self.map(open, Some(ns))
            }
            Some(b'"') => {
                // A Clojure regex: keep its source.
                self.pos += 1;
                self.string()
                    .map(|s| Edn::Tagged("regex".to_owned(), Box::new(Edn::String(s))))
            }
            Some(b) if b.is_ascii_alphabetic() || b >= 0x80 => {
                self.pos += 1;
                let tag = self.token().to_owned();
                self.skip_ignored()?;
                if self.peek().is_none() {
                    return self.error(at, format!("#{tag} tags nothing: the input ends"));
                }
                let form = self.form()?;
                Ok(Edn::Tagged(tag, Box::new(form)))
            }
            Some(b) => self.error(at, format!("unsupported dispatch #{}", b as char)),
            None => self.error(at, "a lone # at the end of the input"),
        }
    }

    /// A string; the current byte is its opening quote.
    fn string(&mut self) -> Parsed<String> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let rest = &self.text[self.pos..];
        let mut chars = rest.char_indices();
        // A pending high surrogate from a \uD8xx escape, with its offset.
        let mut high: Option<(u16, usize)> = None;
        while let Some((i, c)) = chars.next() {
            let here = self.pos + i;
            if let Some((_, at)) = high
                && c != '\\'
            {
                return self.error(at, "a \\u escape is half of a surrogate pair");
            }
            match c {
                '"' => {
                    self.pos = here + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let escaped = match e {
                        't' => '\t',
                        'r' => '\r',
                        'n' => '\n',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        '\\' => '\\',
                        '"' => '"',
                        '\'' => '\'',
                        'u' => {
                            let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                            let unit = (hex.len() == 4
                                && hex.chars().all(|h| h.is_ascii_hexdigit()))
                            .then(|| u16::from_str_radix(&hex, 16).ok())
                            .flatten();
                            let Some(unit) = unit else {
                                return self.error(here, "\\u needs four hex digits");
                            };
                            match (high.take(), unit) {
                                (None, 0xD800..=0xDBFF) => {
                                    high = Some((unit, here));
                                    continue;
                                }
                                (Some((h, _)), 0xDC00..=0xDFFF) => {
                                    let code = 0x10000
                                        + ((u32::from(h) - 0xD800) << 10)
                                        + (u32::from(unit) - 0xDC00);
                                    match char::from_u32(code) {
                                        Some(c) => c,
                                        None => {
                                            return self.error(here, "invalid surrogate pair");
                                        }
                                    }
                                }
                                (Some((_, at)), _) => {
                                    return self
                                        .error(at, "a \\u escape is half of a surrogate pair");
                                }
                                (None, 0xDC00..=0xDFFF) => {
                                    return self
                                        .error(here, "a \\u escape is half of a surrogate pair");
                                }
                                (None, unit) => match char::from_u32(u32::from(unit)) {
                                    Some(c) => c,
                                    None => return self.error(here, "invalid \\u escape"),
                                },
                            }
                        }
                        other => {
                            return self
                                .error(here, format!("unknown escape \\{other} in a string"));
                        }
                    };
                    if let Some((_, at)) = high {
                        return self.error(at, "a \\u escape is half of a surrogate pair");
                    }
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
        self.pos = self.bytes.len();
        self.error(
            open,
            "unterminated string: the input ends before its closing quote",
        )
    }

    /// A character literal; the current byte is the backslash.
    fn character(&mut self) -> Parsed<Edn> {
        let at = self.pos;
        self.pos += 1;
        let Some(first) = self.text.get(self.pos..).and_then(|s| s.chars().next()) else {
            return self.error(at, "a backslash at the end of the input");
        };
        self.pos += first.len_utf8();
        // Names (`newline`, `u0041`) continue up to the next delimiter.
        let name_start = self.pos - first.len_utf8();
        if first.is_ascii_alphanumeric() {
            while let Some(b) = self.peek() {
                if is_delimiter(b) || b == b'\\' {
                    break;
                }
                self.pos += 1;
            }
        }
        let name = self.text.get(name_start..self.pos).unwrap_or("");
        let c = match name {
            _ if name.chars().count() == 1 => Some(first),
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "formfeed" => Some('\u{c}'),
            "backspace" => Some('\u{8}'),
            _ if name.len() == 5 && name.starts_with('u') => u32::from_str_radix(&name[1..], 16)
                .ok()
                .and_then(char::from_u32),
            _ if (2..=4).contains(&name.len()) && name.starts_with('o') => {
                u32::from_str_radix(&name[1..], 8)
                    .ok()
                    .filter(|&n| n <= 0o377)
                    .and_then(char::from_u32)
            }
            _ => None,
        };
        match c {
            Some(c) => Ok(Edn::Char(c)),
            None => self.error(at, format!("unknown character \\{name}")),
        }
    }

    /// An integer, big integer, float, decimal or ratio.
    fn number(&mut self, at: usize) -> Parsed<Edn> {
        let text = self.token();
        let invalid = || ParseError {
            offset: at,
            message: format!("invalid number {text:?}"),
        };
        if let Some(digits) = text.strip_suffix('N') {
            return integer(digits).ok_or_else(invalid);
        }
        if let Some(decimal) = text.strip_suffix('M') {
            return float(decimal).map(Edn::Float).ok_or_else(invalid);
        }
        if let Some((n, d)) = text.split_once('/') {
            let ratio = match (integer(n), integer(d)) {
                (Some(n), Some(d)) => {
                    let as_f64 = |e: Edn| match e {
                        Edn::Int(i) => Some(i as f64),
                        Edn::BigInt(s) => s.parse::<f64>().ok(),
                        _ => None,
                    };
                    match (as_f64(n), as_f64(d)) {
                        (Some(n), Some(d)) if d != 0.0 => Some(Edn::Float(n / d)),
                        _ => None,
                    }
                }
                _ => None,
            };
            return ratio.ok_or_else(invalid);
        }
        if let Some(i) = integer(text) {
            return Ok(i);
        }
        float(text).map(Edn::Float).ok_or_else(invalid)
    }
}

/// `[+-]?digits` as an integer, big when it does not fit an `i64`.
fn integer(text: &str) -> Option<Edn> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let signed = if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    };
    Some(match signed.parse::<i64>() {
        Ok(n) => Edn::Int(n),
        Err(_) => {
            let trimmed = digits.trim_start_matches('0');
            let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
            Edn::BigInt(if negative {
                format!("-{trimmed}")
            } else {
                trimmed.to_owned()
            })
        }
    })
}

/// `[+-]?digits[.digits][e[+-]digits]` (digits before the point required,
/// after it optional) as a float.
fn float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let bytes = body.as_bytes();
    let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if int_len == 0 {
        return None;
    }
    let mut i = int_len;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        i += bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(text: &str) -> Edn {
        let mut forms = parse_edn(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(forms.len(), 1, "{forms:?}");
        forms.pop().unwrap()
    }

    fn error(text: &str) -> (usize, usize, String) {
        match parse_edn(text) {
            Err(HistoryError::Parse {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("{text:?}: expected a parse error, got {other:?}"),
        }
    }

    fn kw(s: &str) -> Edn {
        Edn::Keyword(s.to_owned())
    }

    #[test]
    fn scalars() {
        assert_eq!(one("nil"), Edn::Nil);
        assert_eq!(one("true"), Edn::Bool(true));
        assert_eq!(one("false"), Edn::Bool(false));
        assert_eq!(one("42"), Edn::Int(42));
        assert_eq!(one("-7"), Edn::Int(-7));
        assert_eq!(one("+7"), Edn::Int(7));
        assert_eq!(one("7N"), Edn::Int(7));
        assert_eq!(
            one("123456789012345678901234567890"),
            Edn::BigInt("123456789012345678901234567890".into())
        );
        assert_eq!(
            one("18446744073709551615N"),
            Edn::BigInt("18446744073709551615".into())
        );
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("-2.5e3"), Edn::Float(-2500.0));
        assert_eq!(one("1E2"), Edn::Float(100.0));
        assert_eq!(one("3."), Edn::Float(3.0));
        assert_eq!(one("1.25M"), Edn::Float(1.25));
        assert_eq!(one("1/4"), Edn::Float(0.25));
        assert_eq!(one("##Inf"), Edn::Float(f64::INFINITY));
        assert_eq!(one("##-Inf"), Edn::Float(f64::NEG_INFINITY));
        assert!(matches!(one("##NaN"), Edn::Float(x) if x.is_nan()));
        assert_eq!(one(":cas"), kw("cas"));
        assert_eq!(one(":jepsen.history/op"), kw("jepsen.history/op"));
        assert_eq!(one("foo.bar/baz"), Edn::Symbol("foo.bar/baz".into()));
        assert_eq!(one("-"), Edn::Symbol("-".into()));
        assert_eq!(one("+inc"), Edn::Symbol("+inc".into()));
        assert_eq!(one("\\a"), Edn::Char('a'));
        assert_eq!(one("\\newline"), Edn::Char('\n'));
        assert_eq!(one("\\space"), Edn::Char(' '));
        assert_eq!(one("\\tab"), Edn::Char('\t'));
        assert_eq!(one("\\u0041"), Edn::Char('A'));
        assert_eq!(one("\\("), Edn::Char('('));
        assert_eq!(one("\\é"), Edn::Char('é'));
        assert_eq!(one("\\o101"), Edn::Char('A'));
    }

    #[test]
    fn strings_with_escapes() {
        assert_eq!(one(r#""""#), Edn::String(String::new()));
        assert_eq!(
            one(r#""a\tb\nc\\d\"e\rf\u00e9\b\f""#),
            Edn::String("a\tb\nc\\d\"e\rf\u{e9}\u{8}\u{c}".into())
        );
        assert_eq!(one(r#""\ud83d\ude00""#), Edn::String("😀".into()));
        assert_eq!(
            one("\"multi\nline ☃\""),
            Edn::String("multi\nline ☃".into())
        );
        assert_eq!(
            one("\"; not a comment\""),
            Edn::String("; not a comment".into())
        );
    }

    #[test]
    fn collections_comments_commas_and_discards() {
        assert_eq!(
            one("[1, 2 ,3]"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(2), Edn::Int(3)])
        );
        assert_eq!(
            one("(a b)"),
            Edn::List(vec![Edn::Symbol("a".into()), Edn::Symbol("b".into())])
        );
        assert_eq!(one("()"), Edn::List(vec![]));
        assert_eq!(one("#{1 :a}"), Edn::Set(vec![Edn::Int(1), kw("a")]));
        assert_eq!(
            one("{:a 1, \"b\" [2] ; comment\n 3 nil}"),
            Edn::Map(vec![
                (kw("a"), Edn::Int(1)),
                (Edn::String("b".into()), Edn::Vector(vec![Edn::Int(2)])),
                (Edn::Int(3), Edn::Nil),
            ])
        );
        assert_eq!(
            one("[1 #_ 2 #_#_ 3 4 5]"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(5)])
        );
        assert_eq!(one("#_ [ignored] 9"), Edn::Int(9));
        assert_eq!(
            one("#inst \"2026-11-25T19:38:00.123Z\""),
            Edn::Tagged(
                "inst".into(),
                Box::new(Edn::String("2026-11-25T19:38:00.123Z".into()))
            )
        );
        assert_eq!(
            one("#jepsen.history.Op{:index 1}"),
            Edn::Tagged(
                "jepsen.history.Op".into(),
                Box::new(Edn::Map(vec![(kw("index"), Edn::Int(1))]))
            )
        );
        assert_eq!(
            one("#:op{:type :ok, :_/f :read, :x/y 1}"),
            Edn::Map(vec![
                (kw("op/type"), kw("ok")),
                (kw("f"), kw("read")),
                (kw("x/y"), Edn::Int(1)),
            ])
        );
        let forms = parse_edn("; header\n1 2\n;; trailing").unwrap();
        assert_eq!(forms, vec![Edn::Int(1), Edn::Int(2)]);
        assert_eq!(parse_edn("  ,, \n").unwrap(), vec![]);
    }

    #[test]
    fn to_json() {
        let v = one(r#"{:a [1 2.5 nil] :b #{:x} :c (true "s") 7 \z :m {:n/o 1} [1] 2 :big 99999999999999999999 :nan ##NaN}"#)
            .to_json();
        assert_eq!(
            v,
            json!({
                "a": [1, 2.5, null], "b": ["x"], "c": [true, "s"], "7": "z",
                "m": {"n/o": 1}, "[1]": 2, "big": "99999999999999999999", "nan": null
            })
        );
        assert_eq!(
            one("18446744073709551615N").to_json(),
            json!(18446744073709551615u64)
        );
    }

    #[test]
    fn display_round_trips() {
        let text = r#"[nil true 1 -2 3.5 99999999999999999999N \a \newline "q\"\n" :k/w sym (1) #{2} {:a 1, :b [2]} #t {:c 3}]"#;
        let form = one(text);
        assert_eq!(one(&form.to_string()), form);
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            error("[1 2"),
            (1, 1, "[ is never closed: the input ends first".into())
        );
        let (line, column, message) = error("{:a 1}\n  (1 2]");
        assert_eq!((line, column), (2, 7));
        assert!(message.contains("expected ')'"), "{message}");
        assert!(message.contains("line 2, column 3"), "{message}");
        let (line, column, message) = error("1\n\"abc");
        assert_eq!((line, column), (2, 1));
        assert!(message.starts_with("unterminated string"), "{message}");
        assert_eq!(error("{:a}").0, 1);
        assert!(error("{:a}").2.contains("even number"));
        assert_eq!(error("  )").1, 3);
        assert_eq!(error("1.2.3"), (1, 1, "invalid number \"1.2.3\"".into()));
        assert_eq!(error("[\"\\q\"]").1, 3);
        assert_eq!(error("\\nope").2, "unknown character \\nope");
        assert_eq!(error("é é\n x #").0, 2);
        assert_eq!(error("é é #<x>").1, 5);
        assert!(error(":").2.contains("invalid keyword"));
        assert_eq!(error("1 #_").2, "unexpected end of input");
        assert_eq!(error("#{1").2, "#{ is never closed: the input ends first");
        assert!(error("#tag").2.contains("tags nothing"));
        assert!(error("##Foo").2.contains("##Foo"));
        assert!(error("\"\\ud83d\"").2.contains("surrogate"));
        assert!(error("\"\\u12\"").2.contains("four hex digits"));
        assert!(error("1/0").2.contains("invalid number"));
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(error(&deep).2.contains("nest deeper"), "depth");
        let deep_ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_edn(&deep_ok).is_ok());
    }

    /// A cas-register history in the shape Jepsen writes, with records, commas,
    /// a nemesis and every kind of completion.
    const CAS_HISTORY: &str = r#"{:type :invoke, :f :write, :value 1, :process 0, :time 1000, :index 0}
{:type :ok, :f :write, :value 1, :process 0, :time 2000, :index 1}
{:type :invoke, :f :cas, :value [1 2], :process 1, :time 3000, :index 2}
{:type :info, :f :start-partition, :value [:isolated {"n1" #{"n2" "n3"}}], :process :nemesis, :time 3500, :index 3}
#jepsen.history.Op{:index 4, :time 4000, :type :ok, :process 1, :f :cas, :value [1 2]}
{:type :invoke, :f :read, :value nil, :process 2, :time 5000, :index 5}
{:type :ok, :f :read, :value 2, :process 2, :time 6000, :index 6}
{:type :invoke, :f :cas, :value [5 3], :process 0, :time 7000, :index 7}
{:type :fail, :f :cas, :value [5 3], :process 0, :time 8000, :index 8, :error :mismatch}
{:type :invoke, :f :write, :value 4, :process 1, :time 9000, :index 9}
{:type :info, :f :write, :value 4, :process 1, :time 10000, :index 10, :error [:timeout "no reply"]}
"#;

    #[test]
    fn reads_a_jepsen_cas_register_history() {
        let h = read_edn_history(CAS_HISTORY.as_bytes()).unwrap();
        assert_eq!(h.events.len(), 11);
        let e = &h.events[2];
        assert_eq!(e.index, 2);
        assert_eq!(e.time, 3000);
        assert_eq!(e.process, Process::Client(1));
        assert_eq!(e.kind, EventType::Invoke);
        assert_eq!(e.f, "cas");
        assert_eq!(e.value, json!([1, 2]));
        let nemesis = &h.events[3];
        assert_eq!(nemesis.process, Process::nemesis());
        assert_eq!(nemesis.f, "start-partition");
        assert_eq!(nemesis.value, json!(["isolated", {"n1": ["n2", "n3"]}]));
        assert_eq!(h.events[4].kind, EventType::Ok);
        assert_eq!(h.events[5].value, serde_json::Value::Null);
        assert_eq!(h.events[8].error.as_deref(), Some("mismatch"));
        assert_eq!(
            h.events[10].error.as_deref(),
            Some("[:timeout \"no reply\"]")
        );
        assert_eq!(h.events[10].kind, EventType::Info);
        // Pairing works on it like on our own histories.
        let ops = h.ops();
        assert_eq!(ops.len(), 5);
        assert_eq!(ops[1].complete_index, Some(4));

        // The same ops as one vector, without indexes or times.
        let vector =
            "[{:process 0 :type :invoke :f :read}\n {:process 0 :type :ok :f :read :value 3}]";
        let h = parse_edn_history(vector).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!((h.events[1].index, h.events[1].time), (1, 0));
        assert_eq!(h.events[1].value, json!(3));
    }

    #[test]
    fn jepsen_s_other_layouts_read_like_one_op_per_line() {
        let lines = read_edn_history(CAS_HISTORY.as_bytes()).unwrap();
        let vector = format!("[{CAS_HISTORY}]");
        assert_eq!(parse_edn_history(&vector).unwrap(), lines);
        let list = format!("({CAS_HISTORY})");
        assert_eq!(parse_edn_history(&list).unwrap(), lines);
        let map = format!("{{:name \"cas\"\n :history [{CAS_HISTORY}]\n :valid? true}}");
        assert_eq!(parse_edn_history(&map).unwrap(), lines);
        // A later :history wins, as in Clojure.
        let twice = format!("{{:history [] :history [{CAS_HISTORY}]}}");
        assert_eq!(parse_edn_history(&twice).unwrap(), lines);

        let err = |text: &str| match parse_edn_history(text) {
            Err(HistoryError::Parse {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("{text:?}: {other:?}"),
        };
        // An op of the :history vector is located precisely.
        let (line, column, message) =
            err("{:test \"t\"\n :history [{:process 0 :type :ok :f :r}\n   {:process 0}]}");
        assert_eq!((line, column), (3, 4), "{message}");
        assert_eq!(message, "the operation has no :type");
        // A map without :history is an op like any other.
        assert_eq!(err("{:process 0 :f :r}").2, "the operation has no :type");

        // Knossos's test tuples are refused, naming the form expected, one per
        // line, in a vector, or alone.
        for (text, at) in [
            ("[0 :invoke :write 0]\n[0 :ok :write 0]", (1, 1)),
            ("[[0 :invoke :write 0]\n [0 :ok :write 0]]", (1, 2)),
            ("{:history [[0 :invoke :read nil]]}", (1, 12)),
            ("[0 :invoke :write 0]", (1, 1)),
        ] {
            let (line, column, message) = err(text);
            assert_eq!((line, column), at, "{text}: {message}");
            assert!(
                message.contains("expected an operation map such as {:process 0, :type :invoke, :f :write, :value 0}")
                    && message.contains("[process type f value]"),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn bad_operations_are_located() {
        let err = |text: &str| match parse_edn_history(text) {
            Err(HistoryError::Parse {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("{text:?}: {other:?}"),
        };
        let text = "{:process 0 :type :invoke :f :read}\n  {:process 0 :type :okay :f :read}";
        let (line, column, message) = err(text);
        assert_eq!((line, column), (2, 3));
        assert!(message.contains(":type must be"), "{message}");
        assert!(message.contains(":okay"), "{message}");
        assert!(err("[1 2]").2.contains("must be a map, found an integer"));
        assert_eq!(
            err("{:type :ok :f :read}").2,
            "the operation has no :process"
        );
        assert!(
            err("{:process -1 :type :ok :f :read}")
                .2
                .contains(":process must be")
        );
        assert!(
            err("{:process 1 :type :ok :f :read :time 1.5}")
                .2
                .contains(":time must be")
        );
        assert!(
            err("{:process 1 :type :ok :f [1]}")
                .2
                .contains(":f must be")
        );
        assert_eq!(err("{:process 1 :f :read}").2, "the operation has no :type");
        assert_eq!(err("{:process 1 :type :ok}").2, "the operation has no :f");
        // An element of a history vector is located precisely.
        let (line, column, _) = err("[{:process 0 :type :ok :f :r}\n   {:process 0}]");
        assert_eq!((line, column), (2, 4));
        // Invalid UTF-8 is located too.
        let bytes = b"{:process 0 :type :ok :f :r}\n{:f \xff}";
        match read_edn_history(&bytes[..]) {
            Err(HistoryError::Parse { line, column, .. }) => assert_eq!((line, column), (2, 5)),
            other => panic!("{other:?}"),
        }
    }
}
