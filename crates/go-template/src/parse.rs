//! Go's `text/template/parse` (Go 1.19): the parse tree and the parser, with Go's error
//! messages.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::lex::{Item, ItemType, lex};
use crate::strconv;

/// A list of nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct List {
    pub nodes: Vec<Node>,
}

/// `{{if}}`, `{{range}}` and `{{with}}`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text {
        text: String,
    },
    Action {
        pipe: Pipe,
    },
    Comment {
        text: String,
    },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break {
        pos: usize,
    },
    Continue {
        pos: usize,
    },
    /// Internal: `{{end}}` and `{{else}}` while parsing.
    End {
        pos: usize,
    },
    Else {
        pos: usize,
    },
}

/// A pipeline with optional variable declarations.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<Variable>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub pos: usize,
    pub ident: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A number constant, as Go's `NumberNode`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Number {
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub is_complex: bool,
    pub int64: i64,
    pub uint64: u64,
    pub float64: f64,
    pub complex: (f64, f64),
    pub text: String,
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Identifier {
        pos: usize,
        name: String,
    },
    Variable(Variable),
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        field: Vec<String>,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        n: Box<Number>,
    },
    Str {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// String forms, as Go's `Node.String()` (used in error messages).

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Variable(v) => write!(f, "{v}"),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Field { ident, .. } => {
                for i in ident {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain { node, field, .. } => {
                if let Arg::Pipe(p) = &**node {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in field {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number { n, .. } => f.write_str(&n.text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl std::fmt::Display for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.ident.join("."))
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(" := ")?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for n in &self.nodes {
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

fn write_branch(f: &mut std::fmt::Formatter<'_>, name: &str, b: &Branch) -> std::fmt::Result {
    write!(f, "{{{{{name} {}}}}}{}", b.pipe, b.list)?;
    if let Some(e) = &b.else_list {
        write!(f, "{{{{else}}}}{e}")?;
    }
    f.write_str("{{end}}")
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Text { text } => f.write_str(text),
            Node::Action { pipe } => write!(f, "{{{{{pipe}}}}}"),
            Node::Comment { text } => write!(f, "{{{{{text}}}}}"),
            Node::If(b) => write_branch(f, "if", b),
            Node::Range(b) => write_branch(f, "range", b),
            Node::With(b) => write_branch(f, "with", b),
            Node::Template { name, pipe, .. } => {
                write!(f, "{{{{template {}", strconv::quote(name))?;
                if let Some(p) = pipe {
                    write!(f, " {p}")?;
                }
                f.write_str("}}")
            }
            Node::Break { .. } => f.write_str("{{break}}"),
            Node::Continue { .. } => f.write_str("{{continue}}"),
            Node::End { .. } => f.write_str("{{end}}"),
            Node::Else { .. } => f.write_str("{{else}}"),
        }
    }
}

/// A parsed template: its root list (`None` for an empty definition).
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub root: List,
}

/// `IsEmptyTree`.
fn is_empty_list(l: &List) -> bool {
    l.nodes.iter().all(|n| match n {
        Node::Comment { .. } => true,
        Node::Text { text } => text.trim_matches(|c: char| c.is_whitespace()).is_empty(),
        _ => false,
    })
}

struct Parser<'f> {
    name: String,
    items: Vec<Item>,
    next_item: usize,
    token: [Option<Item>; 3],
    peek_count: usize,
    vars: Vec<String>,
    has_func: &'f dyn Fn(&str) -> bool,
    action_line: usize,
    range_depth: usize,
    trees: BTreeMap<String, Tree>,
}

type PResult<T> = Result<T, String>;

impl Parser<'_> {
    fn lex_next(&mut self) -> Item {
        let it = self.items.get(self.next_item).cloned().unwrap_or(Item {
            typ: ItemType::Eof,
            pos: 0,
            val: String::new(),
            line: 0,
        });
        if self.next_item < self.items.len() {
            self.next_item += 1;
        }
        it
    }

    fn tok(&self, i: usize) -> Item {
        self.token[i].clone().unwrap_or(Item {
            typ: ItemType::Eof,
            pos: 0,
            val: String::new(),
            line: 0,
        })
    }

    fn next(&mut self) -> Item {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = Some(self.lex_next());
        }
        self.tok(self.peek_count)
    }

    fn backup(&mut self) {
        self.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.token[1] = Some(t1);
        self.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.token[1] = Some(t1);
        self.token[2] = Some(t2);
        self.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.peek_count > 0 {
            return self.tok(self.peek_count - 1);
        }
        self.peek_count = 1;
        self.token[0] = Some(self.lex_next());
        self.tok(0)
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf<T>(&self, msg: String) -> PResult<T> {
        Err(format!(
            "template: {}:{}: {}",
            self.name,
            self.tok(0).line,
            msg
        ))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != expected {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_owned();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn parse(&mut self) -> PResult<List> {
        let pos = self.peek().pos;
        let _ = pos;
        let mut root = List { nodes: Vec::new() };
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            let n = self.text_or_action()?;
            match n {
                Node::End { .. } | Node::Else { .. } => {
                    return self.errorf(format!("unexpected {n}"));
                }
                n => root.nodes.push(n),
            }
        }
        Ok(root)
    }

    fn add_tree(&mut self, name: String, root: List) -> PResult<()> {
        match self.trees.get(&name) {
            Some(existing) if !is_empty_list(&existing.root) => {
                if !is_empty_list(&root) {
                    return self.errorf(format!(
                        "template: multiple definition of template {}",
                        strconv::quote(&name)
                    ));
                }
            }
            _ => {
                self.trees.insert(name, Tree { root });
            }
        }
        Ok(())
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let name = self.next_non_space();
        if name.typ != ItemType::String && name.typ != ItemType::RawString {
            return self.unexpected(&name, context);
        }
        let tname = match strconv::unquote(&name.val) {
            Ok(s) => s,
            Err(e) => return self.errorf(e),
        };
        self.expect(ItemType::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Node::End { .. }) {
            return self.errorf(format!("unexpected {end} in {context}"));
        }
        self.add_tree(tname, list)
    }

    fn item_list(&mut self) -> PResult<(List, Node)> {
        let pos = self.peek_non_space().pos;
        let _ = pos;
        let mut list = List { nodes: Vec::new() };
        while self.peek_non_space().typ != ItemType::Eof {
            let n = self.text_or_action()?;
            match n {
                Node::End { .. } | Node::Else { .. } => return Ok((list, n)),
                n => list.nodes.push(n),
            }
        }
        self.errorf("unexpected EOF".to_owned())
    }

    fn text_or_action(&mut self) -> PResult<Node> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Node::Text { text: token.val }),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            ItemType::Comment => Ok(Node::Comment { text: token.val }),
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Node> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control(),
            ItemType::Break => return self.break_control(token.pos, "{{break}}", true),
            ItemType::Continue => return self.break_control(token.pos, "{{continue}}", false),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                let t = self.expect(ItemType::RightDelim, "end")?;
                return Ok(Node::End { pos: t.pos });
            }
            ItemType::If => return self.if_control(),
            ItemType::Range => {
                let b = self.parse_control(false, "range")?;
                return Ok(Node::Range(b));
            }
            ItemType::Template => return self.template_control(),
            ItemType::With => {
                let b = self.parse_control(false, "with")?;
                return Ok(Node::With(b));
            }
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Node::Action { pipe })
    }

    fn break_control(&mut self, pos: usize, what: &str, brk: bool) -> PResult<Node> {
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return self.unexpected(&token, what);
        }
        if self.range_depth == 0 {
            return self.errorf(format!("{what} outside {{{{range}}}}"));
        }
        Ok(if brk {
            Node::Break { pos }
        } else {
            Node::Continue { pos }
        })
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ == ItemType::Variable {
                self.next();
                let after = self.peek();
                let next = self.peek_non_space();
                if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(Variable {
                        pos: v.pos,
                        ident: split_ident(&v.val),
                    });
                    self.vars.push(v.val.clone());
                } else if next.typ == ItemType::Char && next.val == "," {
                    self.next_non_space();
                    pipe.decl.push(Variable {
                        pos: v.pos,
                        ident: split_ident(&v.val),
                    });
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue 'decls;
                            }
                            _ => {
                                return self
                                    .errorf("range can only initialize variables".to_owned());
                            }
                        }
                    }
                    return self.errorf(format!("too many declarations in {context}"));
                } else if after.typ == ItemType::Space {
                    self.backup3(v, after);
                } else {
                    self.backup2(v);
                }
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(
                    Arg::Bool { .. }
                        | Arg::Dot { .. }
                        | Arg::Nil { .. }
                        | Arg::Number { .. }
                        | Arg::Str { .. }
                )
            ) {
                return self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn parse_control(&mut self, allow_else_if: bool, context: &str) -> PResult<Branch> {
        let mark = self.vars.len();
        let r = self.parse_control_inner(allow_else_if, context);
        self.vars.truncate(mark);
        r
    }

    fn parse_control_inner(&mut self, allow_else_if: bool, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = r?;
        let mut else_list = None;
        match next {
            Node::End { .. } => {}
            Node::Else { pos } => {
                if allow_else_if && self.peek().typ == ItemType::If {
                    self.next();
                    let inner = self.if_control()?;
                    let _ = pos;
                    else_list = Some(List { nodes: vec![inner] });
                } else {
                    let (l, next) = self.item_list()?;
                    if !matches!(next, Node::End { .. }) {
                        return self.errorf(format!("expected end; found {next}"));
                    }
                    else_list = Some(l);
                }
            }
            _ => {}
        }
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn if_control(&mut self) -> PResult<Node> {
        Ok(Node::If(self.parse_control(true, "if")?))
    }

    fn else_control(&mut self) -> PResult<Node> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If {
            return Ok(Node::Else { pos: peek.pos });
        }
        let t = self.expect(ItemType::RightDelim, "else")?;
        Ok(Node::Else { pos: t.pos })
    }

    fn template_name(&self, token: &Item, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => match strconv::unquote(&token.val) {
                Ok(s) => Ok(s),
                Err(e) => self.errorf(e),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, context)?;
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Node::End { .. }) {
            return self.errorf(format!("unexpected {end} in {context}"));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, context)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, ItemType::RightDelim)?);
        }
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command".to_owned());
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ == ItemType::Field {
            let pos = self.peek().pos;
            let mut fields = Vec::new();
            while self.peek().typ == ItemType::Field {
                let f = self.next().val;
                fields.push(f[1..].to_owned());
            }
            return match node {
                Arg::Field { ident, .. } => {
                    let mut all = ident;
                    all.extend(fields);
                    Ok(Some(Arg::Field { pos, ident: all }))
                }
                Arg::Variable(v) => {
                    let mut all = v.ident;
                    all.extend(fields);
                    Ok(Some(Arg::Variable(Variable { pos, ident: all })))
                }
                Arg::Bool { .. }
                | Arg::Str { .. }
                | Arg::Number { .. }
                | Arg::Nil { .. }
                | Arg::Dot { .. } => self.errorf(format!(
                    "unexpected . after term {}",
                    strconv::quote(&node.to_string())
                )),
                other => Ok(Some(Arg::Chain {
                    pos,
                    node: Box::new(other),
                    field: fields,
                })),
            };
        }
        Ok(Some(node))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !(self.has_func)(&token.val) {
                    return self.errorf(format!(
                        "function {} not defined",
                        strconv::quote(&token.val)
                    ));
                }
                Arg::Identifier {
                    pos,
                    name: token.val,
                }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let ident = split_ident(&token.val);
                if !self.vars.iter().any(|v| *v == ident[0]) {
                    return self
                        .errorf(format!("undefined variable {}", strconv::quote(&ident[0])));
                }
                Arg::Variable(Variable { pos, ident })
            }
            ItemType::Field => Arg::Field {
                pos,
                ident: token.val[1..].split('.').map(str::to_owned).collect(),
            },
            ItemType::Bool => Arg::Bool {
                pos,
                val: token.val == "true",
            },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                match new_number(&token.val, token.typ) {
                    Ok(n) => Arg::Number {
                        pos,
                        n: Box::new(n),
                    },
                    Err(e) => return self.errorf(e),
                }
            }
            ItemType::LeftParen => Arg::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", ItemType::RightParen)?,
            )),
            ItemType::String | ItemType::RawString => match strconv::unquote(&token.val) {
                Ok(text) => Arg::Str {
                    pos,
                    quoted: token.val,
                    text,
                },
                Err(e) => return self.errorf(e),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

fn split_ident(s: &str) -> Vec<String> {
    s.split('.').map(str::to_owned).collect()
}

/// Go's `newNumber`.
fn new_number(text: &str, typ: ItemType) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_owned(),
        ..Number::default()
    };
    match typ {
        ItemType::CharConstant => {
            let (r, tail) = strconv::unquote_char(&text[1..], '\'')?;
            if tail != "'" {
                return Err(format!("malformed character constant: {text}"));
            }
            let r = u32::from(r);
            n.int64 = i64::from(r);
            n.is_int = true;
            n.uint64 = u64::from(r);
            n.is_uint = true;
            n.float64 = f64::from(r);
            n.is_float = true;
            return Ok(n);
        }
        ItemType::Complex => {
            let c = strconv::parse_complex(text).ok_or_else(|| {
                format!(
                    "strconv.ParseComplex: parsing {}: invalid syntax",
                    strconv::quote(text)
                )
            })?;
            n.is_complex = true;
            n.complex = c;
            simplify_complex(&mut n);
            return Ok(n);
        }
        _ => {}
    }
    if let Some(body) = text.strip_suffix('i')
        && let Some(f) = strconv::parse_float(body)
    {
        n.is_complex = true;
        n.complex = (0.0, f);
        simplify_complex(&mut n);
        return Ok(n);
    }
    let u = strconv::parse_uint(text);
    if let Some(u) = u {
        n.is_uint = true;
        n.uint64 = u;
    }
    if let Some(i) = strconv::parse_int(text) {
        n.is_int = true;
        n.int64 = i;
        if i == 0 {
            n.is_uint = true;
            n.uint64 = u.unwrap_or(0);
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float64 = n.int64 as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float64 = n.uint64 as f64;
    } else if let Some(f) = strconv::parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", strconv::quote(text)));
        }
        n.is_float = true;
        n.float64 = f;
        if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
            n.is_int = true;
            n.int64 = f as i64;
        }
        if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
            n.is_uint = true;
            n.uint64 = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", strconv::quote(text)));
    }
    Ok(n)
}

fn simplify_complex(n: &mut Number) {
    n.is_float = n.complex.1 == 0.0;
    if n.is_float {
        let f = n.complex.0;
        n.float64 = f;
        n.is_int =
            f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f);
        if n.is_int {
            n.int64 = f as i64;
        }
        n.is_uint = f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f);
        if n.is_uint {
            n.uint64 = f as u64;
        }
    }
}

/// Parses `text` as the template `name`: the main tree and those it defines.
pub(crate) fn parse(
    name: &str,
    text: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, Tree>, String> {
    let items = lex(text, !has_func("break"), !has_func("continue"), false);
    let mut p = Parser {
        name: name.to_owned(),
        items,
        next_item: 0,
        token: [None, None, None],
        peek_count: 0,
        vars: vec!["$".to_owned()],
        has_func,
        action_line: 0,
        range_depth: 0,
        trees: BTreeMap::new(),
    };
    let root = p.parse()?;
    p.add_tree(name.to_owned(), root)?;
    Ok(p.trees)
}
