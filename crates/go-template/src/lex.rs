//! Go's `text/template/parse` lexer (Go 1.19), run to completion into a vector of items.

use crate::strconv::quote_rune_u;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Comment,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub typ: ItemType,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str(&self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                // Go's %.10q: the first ten runes, quoted.
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", crate::strconv::quote(&head))
            }
            _ => f.write_str(&crate::strconv::quote(&self.val)),
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const TRIM_MARKER_LEN: usize = 2;

fn is_space(r: char) -> bool {
    matches!(r, ' ' | '\t' | '\r' | '\n')
}

fn is_alpha_numeric(r: char) -> bool {
    r == '_' || r.is_alphabetic() || r.is_numeric()
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(char::from(b[1]))
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(char::from(b[0])) && b[1] == b'-'
}

fn trim_right_len(s: &str) -> usize {
    s.len() - s.trim_end_matches(is_space).len()
}

fn trim_left_len(s: &str) -> usize {
    s.len() - s.trim_start_matches(is_space).len()
}

#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    items: Vec<Item>,
    paren_depth: usize,
    line: usize,
    start_line: usize,
    break_ok: bool,
    continue_ok: bool,
    emit_comment: bool,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Option<char> {
        match self.input[self.pos..].chars().next() {
            None => {
                self.at_eof = true;
                None
            }
            Some(r) => {
                self.pos += r.len_utf8();
                if r == '\n' {
                    self.line += 1;
                }
                Some(r)
            }
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn backup(&mut self) {
        if !self.at_eof
            && self.pos > 0
            && let Some(r) = self.input[..self.pos].chars().next_back()
        {
            self.pos -= r.len_utf8();
            if r == '\n' {
                self.line -= 1;
            }
        }
    }

    fn emit(&mut self, typ: ItemType) {
        self.items.push(Item {
            typ,
            pos: self.start,
            val: self.input[self.start..self.pos].to_owned(),
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(r) if valid.contains(r) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while let Some(r) = self.next() {
            if !valid.contains(r) {
                break;
            }
        }
        self.backup();
    }

    fn errorf(&mut self, msg: String) -> Option<State> {
        self.items.push(Item {
            typ: ItemType::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
        None
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM) {
            return (true, false);
        }
        (false, false)
    }

    fn at_terminator(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(r) if is_space(r) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn step(&mut self, state: State) -> Option<State> {
        match state {
            State::Text => self.lex_text(),
            State::LeftDelim => self.lex_left_delim(),
            State::Comment => self.lex_comment(),
            State::RightDelim => self.lex_right_delim(),
            State::InsideAction => self.lex_inside_action(),
            State::Space => self.lex_space(),
            State::Identifier => self.lex_identifier(),
            State::Field => self.lex_field_or_variable(ItemType::Field),
            State::Variable => {
                if self.at_terminator() {
                    self.emit(ItemType::Variable);
                    return Some(State::InsideAction);
                }
                self.lex_field_or_variable(ItemType::Variable)
            }
            State::Char => self.lex_char(),
            State::Number => self.lex_number(),
            State::Quote => self.lex_quote(),
            State::RawQuote => self.lex_raw_quote(),
        }
    }

    fn lex_text(&mut self) -> Option<State> {
        if let Some(x) = self.rest().find(LEFT_DELIM) {
            let ldn = LEFT_DELIM.len();
            self.pos += x;
            let mut trim = 0;
            if has_left_trim_marker(&self.input[self.pos + ldn..]) {
                trim = trim_right_len(&self.input[self.start..self.pos]);
            }
            self.pos -= trim;
            if self.pos > self.start {
                self.line += self.input[self.start..self.pos].matches('\n').count();
                self.emit(ItemType::Text);
            }
            self.pos += trim;
            self.ignore();
            return Some(State::LeftDelim);
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += self.input[self.start..self.pos].matches('\n').count();
            self.emit(ItemType::Text);
        }
        self.emit(ItemType::Eof);
        None
    }

    fn lex_left_delim(&mut self) -> Option<State> {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(self.rest());
        let after = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.input[self.pos + after..].starts_with(LEFT_COMMENT) {
            self.pos += after;
            self.ignore();
            return Some(State::Comment);
        }
        self.emit(ItemType::LeftDelim);
        self.pos += after;
        self.ignore();
        self.paren_depth = 0;
        Some(State::InsideAction)
    }

    fn lex_comment(&mut self) -> Option<State> {
        self.pos += LEFT_COMMENT.len();
        let Some(i) = self.rest().find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".to_owned());
        };
        self.pos += i + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".to_owned());
        }
        if self.emit_comment {
            self.emit(ItemType::Comment);
        }
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += trim_left_len(self.rest());
        }
        self.ignore();
        Some(State::Text)
    }

    fn lex_right_delim(&mut self) -> Option<State> {
        let trim = has_right_trim_marker(self.rest());
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemType::RightDelim);
        if trim {
            self.pos += trim_left_len(self.rest());
            self.ignore();
        }
        Some(State::Text)
    }

    fn lex_inside_action(&mut self) -> Option<State> {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return Some(State::RightDelim);
            }
            return self.errorf("unclosed left paren".to_owned());
        }
        let Some(r) = self.next() else {
            return self.errorf("unclosed action".to_owned());
        };
        match r {
            r if is_space(r) => {
                self.backup();
                return Some(State::Space);
            }
            '=' => self.emit(ItemType::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".to_owned());
                }
                self.emit(ItemType::Declare);
            }
            '|' => self.emit(ItemType::Pipe),
            '"' => return Some(State::Quote),
            '`' => return Some(State::RawQuote),
            '$' => return Some(State::Variable),
            '\'' => return Some(State::Char),
            '.' => {
                if let Some(&b) = self.input.as_bytes().get(self.pos)
                    && !b.is_ascii_digit()
                {
                    return Some(State::Field);
                }
                self.backup();
                return Some(State::Number);
            }
            '+' | '-' | '0'..='9' => {
                self.backup();
                return Some(State::Number);
            }
            r if is_alpha_numeric(r) => {
                self.backup();
                return Some(State::Identifier);
            }
            '(' => {
                self.emit(ItemType::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(ItemType::RightParen);
                if self.paren_depth == 0 {
                    return self.errorf(format!("unexpected right paren {}", quote_rune_u(r)));
                }
                self.paren_depth -= 1;
            }
            r if r.is_ascii() && !r.is_ascii_control() => self.emit(ItemType::Char),
            r => {
                return self.errorf(format!(
                    "unrecognized character in action: {}",
                    quote_rune_u(r)
                ));
            }
        }
        Some(State::InsideAction)
    }

    fn lex_space(&mut self) -> Option<State> {
        let mut num = 0;
        while let Some(r) = self.peek() {
            if !is_space(r) {
                break;
            }
            self.next();
            num += 1;
        }
        let prev = &self.input[self.pos - 1..];
        if has_right_trim_marker(prev) && prev[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            self.backup();
            if num == 1 {
                return Some(State::RightDelim);
            }
        }
        self.emit(ItemType::Space);
        Some(State::InsideAction)
    }

    fn lex_identifier(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some(r) if is_alpha_numeric(r) => {}
                r => {
                    self.backup();
                    let word = &self.input[self.start..self.pos];
                    if !self.at_terminator() {
                        return self.errorf(format!("bad character {}", quote_rune_u_opt(r)));
                    }
                    match keyword(word) {
                        Some(k) if k != ItemType::Dot => {
                            if (k == ItemType::Break && !self.break_ok)
                                || (k == ItemType::Continue && !self.continue_ok)
                            {
                                self.emit(ItemType::Identifier);
                            } else {
                                self.emit(k);
                            }
                        }
                        _ if word.starts_with('.') => self.emit(ItemType::Field),
                        _ if word == "true" || word == "false" => self.emit(ItemType::Bool),
                        _ => self.emit(ItemType::Identifier),
                    }
                    return Some(State::InsideAction);
                }
            }
        }
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> Option<State> {
        if self.at_terminator() {
            self.emit(if typ == ItemType::Variable {
                ItemType::Variable
            } else {
                ItemType::Dot
            });
            return Some(State::InsideAction);
        }
        let mut last;
        loop {
            last = self.next();
            match last {
                Some(r) if is_alpha_numeric(r) => {}
                _ => {
                    self.backup();
                    break;
                }
            }
        }
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", quote_rune_u_opt(last)));
        }
        self.emit(typ);
        Some(State::InsideAction)
    }

    fn lex_char(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(r) if r != '\n' => {}
                    _ => return self.errorf("unterminated character constant".to_owned()),
                },
                None | Some('\n') => {
                    return self.errorf("unterminated character constant".to_owned());
                }
                Some('\'') => break,
                _ => {}
            }
        }
        self.emit(ItemType::CharConstant);
        Some(State::InsideAction)
    }

    fn lex_number(&mut self) -> Option<State> {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_owned();
            return self.errorf(format!(
                "bad number syntax: {}",
                crate::strconv::quote(&text)
            ));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_owned();
                return self.errorf(format!(
                    "bad number syntax: {}",
                    crate::strconv::quote(&text)
                ));
            }
            self.emit(ItemType::Complex);
        } else {
            self.emit(ItemType::Number);
        }
        Some(State::InsideAction)
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alpha_numeric) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(r) if r != '\n' => {}
                    _ => return self.errorf("unterminated quoted string".to_owned()),
                },
                None | Some('\n') => {
                    return self.errorf("unterminated quoted string".to_owned());
                }
                Some('"') => break,
                _ => {}
            }
        }
        self.emit(ItemType::String);
        Some(State::InsideAction)
    }

    fn lex_raw_quote(&mut self) -> Option<State> {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".to_owned()),
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(ItemType::RawString);
        Some(State::InsideAction)
    }
}

fn quote_rune_u_opt(r: Option<char>) -> String {
    match r {
        Some(r) => quote_rune_u(r),
        // Go's %#U of eof (-1).
        None => "U+FFFFFFFFFFFFFFFF".to_owned(),
    }
}

/// Lexes `input` to the end (or the first error, which is the last item).
pub(crate) fn lex(input: &str, break_ok: bool, continue_ok: bool, emit_comment: bool) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        at_eof: false,
        items: Vec::new(),
        paren_depth: 0,
        line: 1,
        start_line: 1,
        break_ok,
        continue_ok,
        emit_comment,
    };
    let mut state = Some(State::Text);
    while let Some(s) = state {
        state = l.step(s);
    }
    l.items
}
