//! Go's `text/template` execution (Go 1.19 `exec.go`), with its error messages.

use std::collections::BTreeMap;

use crate::fmt::sprint_value;
use crate::funcs::{builtins, truth};
use crate::parse::{Arg, Branch, Command, List, Node, Pipe, Tree, Variable};
use crate::strconv;
use crate::value::{Func, Kind, TypeRef, Value, types};

/// What a template does with a map key that is not there (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// `missingkey=default` / `invalid`: no value (prints `<no value>`).
    #[default]
    Invalid,
    /// `missingkey=zero`: the zero value of the map's element type.
    Zero,
    /// `missingkey=error`: execution stops with an error.
    Error,
}

/// Functions by name, as Go's `template.FuncMap`.
pub type FuncMap = BTreeMap<String, Func>;

const MAX_EXEC_DEPTH: usize = 100_000;

/// The node an error is reported at.
#[derive(Clone, Copy)]
enum Cur<'t> {
    Node(&'t Node),
    Pipe(&'t Pipe),
    Arg(&'t Arg),
    Var(&'t Variable),
    Cmd(&'t Command),
}

impl Cur<'_> {
    fn pos(&self) -> usize {
        match self {
            Cur::Node(n) => match n {
                Node::Action { pipe } => pipe.pos,
                Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
                Node::Template { pos, .. }
                | Node::Break { pos }
                | Node::Continue { pos }
                | Node::End { pos }
                | Node::Else { pos } => *pos,
                Node::Text { .. } | Node::Comment { .. } => 0,
            },
            Cur::Pipe(p) => p.pos,
            Cur::Arg(a) => a.pos(),
            Cur::Var(v) => v.pos,
            Cur::Cmd(c) => c.pos,
        }
    }

    fn context(&self) -> String {
        match self {
            Cur::Node(n) => n.to_string(),
            Cur::Pipe(p) => p.to_string(),
            Cur::Arg(a) => a.to_string(),
            Cur::Var(v) => v.to_string(),
            Cur::Cmd(c) => c.to_string(),
        }
    }
}

/// An execution error: Go's message and what had been written before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    /// The message, as Go's `ExecError.Error()` (`template: name:1:2: executing "name" at
    /// <.X>: ...`).
    pub message: String,
    /// The output written before the error.
    pub output: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, String>;

pub(crate) struct Exec<'t> {
    pub name: &'t str,
    pub text: &'t str,
    pub trees: &'t BTreeMap<String, Tree>,
    pub funcs: &'t FuncMap,
    pub missing_key: MissingKey,
}

struct State<'t> {
    ex: &'t Exec<'t>,
    tmpl_name: &'t str,
    out: String,
    node: Option<Cur<'t>>,
    vars: Vec<(String, Value)>,
    depth: usize,
}

/// Where a callable comes from: a function, or a method with its receiver.
struct Callable<'a> {
    func: &'a Func,
    receiver: Option<Value>,
    builtin: bool,
}

impl Exec<'_> {
    pub(crate) fn run(&self, data: &Value) -> Result<String, ExecError> {
        let Some(tree) = self.trees.get(self.name) else {
            return Err(ExecError {
                message: format!(
                    "template: {}: {} is an incomplete or empty template",
                    self.name,
                    strconv::quote(self.name)
                ),
                output: String::new(),
            });
        };
        let mut s = State {
            ex: self,
            tmpl_name: self.name,
            out: String::new(),
            node: None,
            vars: vec![("$".to_owned(), data.clone())],
            depth: 0,
        };
        match s.walk_list(data, &tree.root) {
            Ok(_) => Ok(s.out),
            Err(message) => Err(ExecError {
                message,
                output: s.out,
            }),
        }
    }
}

impl<'t> State<'t> {
    fn at(&mut self, c: Cur<'t>) {
        self.node = Some(c);
    }

    fn errorf<T>(&self, msg: impl Into<String>) -> R<T> {
        let msg = msg.into();
        let name = self.tmpl_name;
        Err(match self.node {
            None => format!("template: {name}: {msg}"),
            Some(c) => {
                let pos = c.pos().min(self.ex.text.len());
                let text = self.ex.text.get(..pos).unwrap_or("");
                let col = match text.rfind('\n') {
                    None => pos,
                    Some(i) => pos - (i + 1),
                };
                let line = 1 + text.matches('\n').count();
                format!(
                    "template: {}:{line}:{col}: executing {} at <{}>: {msg}",
                    self.ex.name,
                    strconv::quote(name),
                    c.context()
                )
            }
        })
    }

    fn push(&mut self, name: &str, v: Value) {
        self.vars.push((name.to_owned(), v));
    }

    fn set_var(&mut self, name: &str, v: Value) -> R<()> {
        for (n, val) in self.vars.iter_mut().rev() {
            if n == name {
                *val = v;
                return Ok(());
            }
        }
        self.errorf(format!("undefined variable: {name}"))
    }

    fn set_top_var(&mut self, n: usize, v: Value) {
        let len = self.vars.len();
        if let Some(slot) = self.vars.get_mut(len - n) {
            slot.1 = v;
        }
    }

    fn var_value(&self, name: &str) -> R<Value> {
        for (n, val) in self.vars.iter().rev() {
            if n == name {
                return Ok(val.clone());
            }
        }
        self.errorf(format!("undefined variable: {name}"))
    }

    fn walk_list(&mut self, dot: &Value, list: &'t List) -> R<Flow> {
        for n in &list.nodes {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> R<Flow> {
        self.at(Cur::Node(node));
        match node {
            Node::Action { pipe } => {
                let val = self.eval_pipeline(dot, Some(pipe))?;
                if pipe.decl.is_empty() {
                    self.print_value(node, &val)?;
                }
            }
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
            Node::Comment { .. } | Node::End { .. } | Node::Else { .. } => {}
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { name, pipe, .. } => {
                let Some(tree) = self.ex.trees.get(name.as_str()) else {
                    return self.errorf(format!("template {} not defined", strconv::quote(name)));
                };
                if self.depth == MAX_EXEC_DEPTH {
                    return self.errorf(format!(
                        "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
                    ));
                }
                let new_dot = self.eval_pipeline(dot, pipe.as_ref())?;
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
                let saved_name = self.tmpl_name;
                // The tree's name lives as long as the trees.
                let tname = self
                    .ex
                    .trees
                    .get_key_value(name.as_str())
                    .map_or(saved_name, |(k, _)| k.as_str());
                self.tmpl_name = tname;
                self.depth += 1;
                let r = self.walk_list(&new_dot, &tree.root);
                self.depth -= 1;
                self.tmpl_name = saved_name;
                self.vars = saved_vars;
                r?;
            }
            Node::Text { text } => self.out.push_str(text),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, b: &'t Branch) -> R<Flow> {
        let mark = self.vars.len();
        let r = self.walk_if_or_with_inner(with, dot, b);
        self.vars.truncate(mark);
        r
    }

    fn walk_if_or_with_inner(&mut self, with: bool, dot: &Value, b: &'t Branch) -> R<Flow> {
        let val = self.eval_pipeline(dot, Some(&b.pipe))?;
        if truth(&val.indirect_interface()) {
            if with {
                self.walk_list(&val, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn walk_range(&mut self, dot: &Value, node: &'t Node, r: &'t Branch) -> R<Flow> {
        self.at(Cur::Node(node));
        let mark0 = self.vars.len();
        let result = self.walk_range_inner(dot, r);
        self.vars.truncate(mark0);
        match result {
            Ok(Flow::Break) | Ok(Flow::Continue) => Ok(Flow::Normal),
            other => other,
        }
    }

    fn walk_range_inner(&mut self, dot: &Value, r: &'t Branch) -> R<Flow> {
        let val = self.eval_pipeline(dot, Some(&r.pipe))?.indirect().0;
        let mark = self.vars.len();
        let ndecl = r.pipe.decl.len();
        let iterate = |s: &mut Self, index: Value, elem: Value| -> R<bool> {
            if ndecl > 0 {
                s.set_top_var(1, elem.clone());
            }
            if ndecl > 1 {
                s.set_top_var(2, index);
            }
            let flow = s.walk_list(&elem, &r.list);
            s.vars.truncate(mark);
            match flow? {
                Flow::Break => Ok(false),
                _ => Ok(true),
            }
        };
        match val.kind() {
            Some(Kind::Array | Kind::Slice) if !val.is_empty() => {
                for (i, e) in val.elems().iter().enumerate() {
                    if !iterate(self, Value::int(i as i64), e.clone())? {
                        break;
                    }
                }
                return Ok(Flow::Normal);
            }
            Some(Kind::Map) if !val.is_empty() => {
                for (k, v) in val.entries() {
                    if !iterate(self, k.clone(), v.clone())? {
                        break;
                    }
                }
                return Ok(Flow::Normal);
            }
            Some(Kind::Array | Kind::Slice | Kind::Map) => {}
            None => {}
            Some(_) => {
                return self.errorf(format!("range can't iterate over {}", sprint_value(&val)));
            }
        }
        if let Some(e) = &r.else_list {
            return self.walk_list(dot, e);
        }
        Ok(Flow::Normal)
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: Option<&'t Pipe>) -> R<Value> {
        let Some(pipe) = pipe else {
            return Ok(Value::Invalid);
        };
        self.at(Cur::Pipe(pipe));
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let mut v = self.eval_command(dot, cmd, value.take())?;
            if v.ty().is_some_and(|t| t.is_empty_interface()) {
                v = v.indirect_interface();
            }
            value = Some(v);
        }
        let value = value.unwrap_or_default();
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&var.ident[0], value.clone())?;
            } else {
                self.push(&var.ident[0], value.clone());
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Value>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return self.errorf(format!(
                "can't give argument to non-function {}",
                args.first().map(ToString::to_string).unwrap_or_default()
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Command, fin: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return self.errorf("empty command");
        };
        match first {
            Arg::Field { ident, .. } => {
                self.at(Cur::Arg(first));
                return self.eval_field_chain(
                    dot,
                    dot.clone(),
                    Cur::Arg(first),
                    ident,
                    Some(&cmd.args),
                    fin,
                );
            }
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, Some(&cmd.args), fin),
            Arg::Identifier { name, .. } => {
                return self.eval_function(dot, first, name, Cur::Cmd(cmd), Some(&cmd.args), fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, Some(p));
            }
            Arg::Variable(v) => return self.eval_variable_node(dot, v, Some(&cmd.args), fin),
            _ => {}
        }
        self.at(Cur::Arg(first));
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => self.errorf("nil is not a command"),
            Arg::Number { n, .. } => self.ideal_constant(first, n),
            Arg::Str { text, .. } => Ok(Value::string(text)),
            _ => self.errorf(format!(
                "can't evaluate command {}",
                strconv::quote(&first.to_string())
            )),
        }
    }

    fn ideal_constant(&mut self, node: &'t Arg, n: &crate::parse::Number) -> R<Value> {
        self.at(Cur::Arg(node));
        let text = &n.text;
        let is_hex_int = text.len() > 2
            && text.starts_with('0')
            && matches!(text.as_bytes()[1], b'x' | b'X')
            && !text.contains(['p', 'P']);
        let is_rune = text.starts_with('\'');
        if n.is_complex {
            return Ok(Value::complex128(n.complex.0, n.complex.1));
        }
        if n.is_float && !is_hex_int && !is_rune && text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::float64(n.float64));
        }
        if n.is_int {
            return Ok(Value::int(n.int64));
        }
        if n.is_uint {
            return self.errorf(format!("{text} overflows int"));
        }
        Ok(Value::Invalid)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(Cur::Arg(chain));
        let Arg::Chain { node, field, .. } = chain else {
            return self.errorf("internal error: not a chain");
        };
        if field.is_empty() {
            return self.errorf("internal error: no fields in evalChainNode");
        }
        if matches!(**node, Arg::Nil { .. }) {
            return self.errorf(format!("indirection through explicit nil in {chain}"));
        }
        let pipe = self.eval_arg(dot, None, node)?;
        self.eval_field_chain(dot, pipe, Cur::Arg(chain), field, args, fin)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Value,
        v: &'t Variable,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(Cur::Var(v));
        let value = self.var_value(&v.ident[0])?;
        if v.ident.len() == 1 {
            self.not_a_function(args.unwrap_or(&[]), &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, Cur::Var(v), &v.ident[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        node: Cur<'t>,
        ident: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        let n = ident.len();
        for name in &ident[..n.saturating_sub(1)] {
            receiver = self.eval_field(dot, name, node, None, None, receiver)?;
        }
        match ident.last() {
            Some(last) => self.eval_field(dot, last, node, args, fin, receiver),
            None => Ok(receiver),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'t Arg,
        name: &str,
        cmd: Cur<'t>,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(Cur::Arg(ident));
        let (func, builtin) = match self.ex.funcs.get(name) {
            Some(f) => (f.clone(), false),
            None => match builtins().get(name) {
                Some(f) => (f.clone(), true),
                None => {
                    return self.errorf(format!(
                        "{} is not a defined function",
                        strconv::quote(name)
                    ));
                }
            },
        };
        let c = Callable {
            func: &func,
            receiver: None,
            builtin,
        };
        self.eval_call(dot, &c, cmd, name, args, fin)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        field_name: &str,
        node: Cur<'t>,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
        receiver: Value,
    ) -> R<Value> {
        let Some(typ) = receiver.ty().cloned() else {
            if self.ex.missing_key == MissingKey::Error {
                return self.errorf(format!(
                    "nil data; no entry for key {}",
                    strconv::quote(field_name)
                ));
            }
            return Ok(Value::Invalid);
        };
        let (receiver, is_nil) = receiver.indirect();
        if receiver.kind() == Some(Kind::Interface) && is_nil {
            return self.errorf(format!(
                "nil pointer evaluating {}.{field_name}",
                typ.name()
            ));
        }
        let rtype = receiver.ty().cloned().unwrap_or_else(types::any);
        if let Some(m) = rtype.method_by_name(field_name) {
            let func = m.func.clone();
            let c = Callable {
                func: &func,
                receiver: Some(receiver.clone()),
                builtin: false,
            };
            return self.eval_call(dot, &c, node, field_name, args, fin);
        }
        let has_args = args.is_some_and(|a| a.len() > 1) || fin.is_some();
        match rtype.kind() {
            Kind::Struct => {
                if let Some((path, f)) = rtype.field_by_name(field_name) {
                    if !f.is_exported() {
                        return self.errorf(format!(
                            "{field_name} is an unexported field of struct type {}",
                            typ.name()
                        ));
                    }
                    let mut v = receiver.clone();
                    for (depth, i) in path.iter().enumerate() {
                        if depth > 0 {
                            let (inner, nil) = v.indirect();
                            if nil {
                                return self.errorf(format!(
                                    "reflect: indirection through nil pointer to embedded struct field {}",
                                    f.name
                                ));
                            }
                            v = inner;
                        }
                        v = v.fields().get(*i).cloned().unwrap_or_default();
                    }
                    if has_args {
                        return self.errorf(format!(
                            "{field_name} has arguments but cannot be invoked as function"
                        ));
                    }
                    return Ok(v);
                }
            }
            Kind::Map => {
                let key_ok = rtype
                    .key()
                    .is_some_and(|k| types::string().assignable_to(k));
                if key_ok {
                    if has_args {
                        return self
                            .errorf(format!("{field_name} is not a method but has arguments"));
                    }
                    let found = receiver
                        .entries()
                        .iter()
                        .find(|(k, _)| k.indirect_interface().as_str() == Some(field_name))
                        .map(|(_, v)| v.clone());
                    return match found {
                        Some(v) => Ok(v),
                        None => match self.ex.missing_key {
                            MissingKey::Invalid => Ok(Value::Invalid),
                            MissingKey::Zero => {
                                Ok(rtype.elem().map_or(Value::Invalid, Value::zero))
                            }
                            MissingKey::Error => self.errorf(format!(
                                "map has no entry for key {}",
                                strconv::quote(field_name)
                            )),
                        },
                    };
                }
            }
            Kind::Pointer => {
                let etyp = rtype.elem().cloned();
                let no_field = etyp.as_ref().is_some_and(|e| {
                    e.kind() == Kind::Struct && e.field_by_name(field_name).is_none()
                });
                if !no_field && is_nil {
                    return self.errorf(format!(
                        "nil pointer evaluating {}.{field_name}",
                        typ.name()
                    ));
                }
            }
            _ => {}
        }
        self.errorf(format!(
            "can't evaluate field {field_name} in type {}",
            typ.name()
        ))
    }

    fn eval_call(
        &mut self,
        dot: &Value,
        c: &Callable<'_>,
        node: Cur<'t>,
        name: &str,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        let args: &'t [Arg] = match args {
            Some(a) if !a.is_empty() => &a[1..],
            _ => &[],
        };
        let f = c.func;
        let num_params = f.params.len();
        let num_in = args.len() + usize::from(fin.is_some());
        let mut num_fixed = args.len();
        if f.variadic {
            num_fixed = num_params - 1;
            if num_in < num_fixed {
                return self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    num_params - 1,
                    args.len()
                ));
            }
        } else if num_in != num_params {
            return self.errorf(format!(
                "wrong number of args for {name}: want {num_params} got {num_in}"
            ));
        }
        if c.builtin && (name == "and" || name == "or") {
            let arg_type = f.params[0].clone();
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, Some(&arg_type), a)?;
                if truth(&v) == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = self.validate_type(fv, Some(&arg_type))?;
            }
            return Ok(v);
        }
        let mut argv: Vec<Value> = Vec::with_capacity(num_in + 1);
        if let Some(r) = &c.receiver {
            argv.push(r.clone());
        }
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            let t = f.params[i].clone();
            argv.push(self.eval_arg(dot, Some(&t), &args[i])?);
            i += 1;
        }
        if f.variadic {
            let t = f.params[num_params - 1].clone();
            while i < args.len() {
                argv.push(self.eval_arg(dot, Some(&t), &args[i])?);
                i += 1;
            }
        }
        if let Some(fv) = fin {
            let t = if f.variadic {
                if num_in - 1 < num_fixed {
                    f.params[num_in - 1].clone()
                } else {
                    f.params[num_params - 1].clone()
                }
            } else {
                f.params[num_params - 1].clone()
            };
            argv.push(self.validate_type(fv, Some(&t))?);
        }
        match (f.call)(&argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at(node);
                self.errorf(format!("error calling {name}: {e}"))
            }
        }
    }

    fn validate_type(&self, value: Value, typ: Option<&TypeRef>) -> R<Value> {
        let Some(typ) = typ else { return Ok(value) };
        let Some(vt) = value.ty().cloned() else {
            if typ.can_be_nil() {
                return Ok(Value::zero(typ));
            }
            return self.errorf(format!("invalid value; expected {}", typ.name()));
        };
        if typ.kind() == Kind::ReflectValue {
            return Ok(value);
        }
        if !vt.assignable_to(typ) {
            if vt.kind() == Kind::Interface && !value.is_nil() {
                let inner = value.indirect_interface();
                if inner.ty().is_some_and(|t| t.assignable_to(typ)) {
                    return Ok(inner);
                }
                return self.errorf(format!(
                    "wrong type for value; expected {}; got {}",
                    typ.name(),
                    inner.ty().map_or("", |t| t.name())
                ));
            }
            if vt.kind() == Kind::Pointer && vt.elem().is_some_and(|e| e.assignable_to(typ)) {
                return match value.deref() {
                    Some(v) => Ok(v.clone()),
                    None => {
                        self.errorf(format!("dereference of nil pointer of type {}", typ.name()))
                    }
                };
            }
            return self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                typ.name(),
                vt.name()
            ));
        }
        Ok(value)
    }

    fn eval_arg(&mut self, dot: &Value, typ: Option<&TypeRef>, n: &'t Arg) -> R<Value> {
        self.at(Cur::Arg(n));
        match n {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), typ),
            Arg::Nil { .. } => {
                let Some(t) = typ else {
                    return self.errorf("cannot assign nil to <nil>");
                };
                if t.can_be_nil() {
                    return Ok(Value::zero(t));
                }
                return self.errorf(format!("cannot assign nil to {}", t.name()));
            }
            Arg::Field { ident, .. } => {
                self.at(Cur::Arg(n));
                let v = self.eval_field_chain(
                    dot,
                    dot.clone(),
                    Cur::Arg(n),
                    ident,
                    Some(std::slice::from_ref(n)),
                    None,
                )?;
                return self.validate_type(v, typ);
            }
            Arg::Variable(v) => {
                let v = self.eval_variable_node(dot, v, None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, Some(p))?;
                return self.validate_type(v, typ);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, n, name, Cur::Arg(n), None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Chain { .. } => {
                let v = self.eval_chain_node(dot, n, None, None)?;
                return self.validate_type(v, typ);
            }
            _ => {}
        }
        let Some(typ) = typ else {
            return self.errorf(format!("can't handle {n} for arg of type <nil>"));
        };
        let k = typ.kind();
        match (k, n) {
            (Kind::Bool, Arg::Bool { val, .. }) => {
                return Ok(Value::bool(*val).convert(typ));
            }
            (Kind::Bool, _) => return self.errorf(format!("expected bool; found {n}")),
            (k, Arg::Number { n: num, .. }) if k.is_complex() && num.is_complex => {
                return Ok(Value::complex128(num.complex.0, num.complex.1).convert(typ));
            }
            (k, _) if k.is_complex() => {
                return self.errorf(format!("expected complex; found {n}"));
            }
            (k, Arg::Number { n: num, .. }) if k.is_float() && num.is_float => {
                return Ok(Value::float_of(typ, num.float64));
            }
            (k, _) if k.is_float() => return self.errorf(format!("expected float; found {n}")),
            (k, Arg::Number { n: num, .. }) if k.is_int() && num.is_int => {
                return Ok(Value::int_of(typ, num.int64));
            }
            (k, _) if k.is_int() => {
                return self.errorf(format!("expected integer; found {n}"));
            }
            (Kind::Interface, _) if typ.is_empty_interface() => {
                return self.eval_empty_interface(dot, n);
            }
            (Kind::ReflectValue, _) => return self.eval_empty_interface(dot, n),
            (Kind::String, Arg::Str { text, .. }) => return Ok(Value::string_of(typ, text)),
            (Kind::String, _) => return self.errorf(format!("expected string; found {n}")),
            (k, Arg::Number { n: num, .. }) if k.is_uint() && num.is_uint => {
                return Ok(Value::uint_of(typ, num.uint64));
            }
            (k, _) if k.is_uint() => {
                return self.errorf(format!("expected unsigned integer; found {n}"));
            }
            _ => {}
        }
        self.errorf(format!("can't handle {n} for arg of type {}", typ.name()))
    }

    fn eval_empty_interface(&mut self, dot: &Value, n: &'t Arg) -> R<Value> {
        self.at(Cur::Arg(n));
        match n {
            Arg::Bool { val, .. } => Ok(Value::bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Field { ident, .. } => {
                self.eval_field_chain(dot, dot.clone(), Cur::Arg(n), ident, None, None)
            }
            Arg::Identifier { name, .. } => {
                self.eval_function(dot, n, name, Cur::Arg(n), None, None)
            }
            Arg::Nil { .. } => self.errorf("evalEmptyInterface: nil (can't happen)"),
            Arg::Number { n: num, .. } => self.ideal_constant(n, num),
            Arg::Str { text, .. } => Ok(Value::string(text)),
            Arg::Variable(v) => self.eval_variable_node(dot, v, None, None),
            Arg::Pipe(p) => self.eval_pipeline(dot, Some(p)),
            Arg::Chain { .. } => self.errorf(format!(
                "can't handle assignment of {n} to empty interface argument"
            )),
        }
    }

    fn print_value(&mut self, node: &'t Node, v: &Value) -> R<()> {
        self.at(Cur::Node(node));
        let mut v = v.clone();
        if v.kind() == Some(Kind::Pointer) {
            v = v.indirect().0;
        }
        let Some(t) = v.ty() else {
            self.out.push_str("<no value>");
            return Ok(());
        };
        let stringer = t.method_by_name("String").is_some() || t.method_by_name("Error").is_some();
        if !stringer && t.kind() == Kind::Func {
            return self.errorf(format!("can't print {node} of type {}", t.name()));
        }
        let shown = if t.kind() == Kind::Interface {
            v.indirect_interface()
        } else {
            v
        };
        self.out.push_str(&sprint_value(&shown));
        Ok(())
    }
}
