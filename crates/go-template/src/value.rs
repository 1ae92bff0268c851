//! The values templates run on: a small model of Go's `reflect` — a [`Type`] (kind, name,
//! element and key types, struct fields, methods) and a [`Value`] of that type.
//!
//! Types matter to Go's templates: they decide what prints how (`[a b]` for a slice,
//! `map[k:v]` for a map, `{a b}` for a struct, a `String()` method for a `time.Time`), what
//! a function accepts (`join` takes a `[]string`, not a `[]interface {}`), and what errors
//! say (`can't evaluate field X in type types.ImageInspect`).

use std::cmp::Ordering;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// Go's `reflect.Kind`, without channels and unsafe pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Kind {
    Bool,
    Int,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Uintptr,
    Float32,
    Float64,
    Complex64,
    Complex128,
    String,
    Array,
    Slice,
    Map,
    Struct,
    Pointer,
    Interface,
    Func,
    /// `reflect.Value` as a function parameter type: the builtins that take any value
    /// unconverted (`index`, `len`, `eq`, `and`, ...).
    ReflectValue,
}

impl Kind {
    /// A signed integer kind.
    pub fn is_int(self) -> bool {
        matches!(
            self,
            Kind::Int | Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64
        )
    }

    /// An unsigned integer kind.
    pub fn is_uint(self) -> bool {
        matches!(
            self,
            Kind::Uint | Kind::Uint8 | Kind::Uint16 | Kind::Uint32 | Kind::Uint64 | Kind::Uintptr
        )
    }

    /// A floating-point kind.
    pub fn is_float(self) -> bool {
        matches!(self, Kind::Float32 | Kind::Float64)
    }

    /// A complex kind.
    pub fn is_complex(self) -> bool {
        matches!(self, Kind::Complex64 | Kind::Complex128)
    }

    /// Go's name of the kind (`reflect.Kind.String`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Int8 => "int8",
            Kind::Int16 => "int16",
            Kind::Int32 => "int32",
            Kind::Int64 => "int64",
            Kind::Uint => "uint",
            Kind::Uint8 => "uint8",
            Kind::Uint16 => "uint16",
            Kind::Uint32 => "uint32",
            Kind::Uint64 => "uint64",
            Kind::Uintptr => "uintptr",
            Kind::Float32 => "float32",
            Kind::Float64 => "float64",
            Kind::Complex64 => "complex64",
            Kind::Complex128 => "complex128",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Slice => "slice",
            Kind::Map => "map",
            Kind::Struct => "struct",
            Kind::Pointer => "ptr",
            Kind::Interface => "interface",
            Kind::Func => "func",
            Kind::ReflectValue => "struct",
        }
    }
}

/// A shared [`Type`].
pub type TypeRef = Arc<Type>;

/// How a struct field is encoded by Go's `encoding/json` (its `json:"..."` tag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonTag {
    /// The key (`None`: the field's name).
    pub name: Option<String>,
    /// `omitempty`.
    pub omit_empty: bool,
    /// `json:"-"`.
    pub skip: bool,
}

/// A struct field.
#[derive(Debug, Clone)]
pub struct Field {
    /// The Go name (exported when it starts with an upper-case letter).
    pub name: String,
    /// Its type.
    pub ty: TypeRef,
    /// An embedded field (its fields and methods are promoted).
    pub embedded: bool,
    /// The `json` tag.
    pub json: JsonTag,
}

impl Field {
    /// A field with no tag.
    pub fn new(name: &str, ty: TypeRef) -> Field {
        Field {
            name: name.to_owned(),
            ty,
            embedded: false,
            json: JsonTag::default(),
        }
    }

    /// The field with a `json:"name"` tag.
    pub fn json_name(mut self, name: &str) -> Field {
        self.json.name = Some(name.to_owned());
        self
    }

    /// The field with `json:",omitempty"`.
    pub fn omit_empty(mut self) -> Field {
        self.json.omit_empty = true;
        self
    }

    /// The field embedded (`struct { HeaderContext; ... }`).
    pub fn embedded(mut self) -> Field {
        self.embedded = true;
        self
    }

    /// Go's rule: exported when the name starts with an upper-case letter.
    pub fn is_exported(&self) -> bool {
        self.name.chars().next().is_some_and(char::is_uppercase)
    }
}

/// What a function or method does with its (already type-checked) arguments: a value, or an
/// error message (Go's second `error` result).
pub type FuncImpl = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// A function's or method's signature and code. Methods get their receiver as the first
/// argument (not listed in `params`).
#[derive(Clone)]
pub struct Func {
    /// Parameter types; with `variadic`, the last one is the element type of `...T`.
    pub params: Vec<TypeRef>,
    /// Whether the last parameter is variadic.
    pub variadic: bool,
    /// The (first) result type.
    pub result: TypeRef,
    /// Whether there is a second `error` result.
    pub returns_error: bool,
    /// The code.
    pub call: FuncImpl,
}

impl fmt::Debug for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Func")
            .field("params", &self.params)
            .field("variadic", &self.variadic)
            .field("result", &self.result.name)
            .finish_non_exhaustive()
    }
}

impl Func {
    /// A function of fixed arity that cannot fail.
    pub fn new(
        params: Vec<TypeRef>,
        result: TypeRef,
        call: impl Fn(&[Value]) -> Value + Send + Sync + 'static,
    ) -> Func {
        Func {
            params,
            variadic: false,
            result,
            returns_error: false,
            call: Arc::new(move |a| Ok(call(a))),
        }
    }

    /// A function with a second `error` result.
    pub fn fallible(
        params: Vec<TypeRef>,
        result: TypeRef,
        call: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Func {
        Func {
            params,
            variadic: false,
            result,
            returns_error: true,
            call: Arc::new(call),
        }
    }

    /// The function made variadic (its last parameter is `...T`).
    pub fn variadic(mut self) -> Func {
        self.variadic = true;
        self
    }

    /// Go's `func(...) ...` type string.
    fn type_string(&self) -> String {
        let mut s = String::from("func(");
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            if self.variadic && i + 1 == self.params.len() {
                s.push_str("...");
            }
            s.push_str(&p.name);
        }
        s.push(')');
        if self.returns_error {
            s.push_str(&format!(" ({}, error)", self.result.name));
        } else {
            s.push(' ');
            s.push_str(&self.result.name);
        }
        s
    }
}

/// A method: a name and a [`Func`] whose first argument is the receiver.
#[derive(Clone, Debug)]
pub struct Method {
    /// Its name.
    pub name: String,
    /// Its code; the receiver comes first in the arguments.
    pub func: Func,
}

/// A custom `MarshalJSON`: the JSON text of a value.
pub type MarshalFn = Arc<dyn Fn(&Value) -> Result<String, String> + Send + Sync>;

/// A Go type.
pub struct Type {
    pub(crate) name: String,
    pub(crate) named: bool,
    pub(crate) kind: Kind,
    pub(crate) elem: Option<TypeRef>,
    pub(crate) key: Option<TypeRef>,
    pub(crate) len: usize,
    pub(crate) fields: Vec<Field>,
    pub(crate) methods: Vec<Method>,
    pub(crate) marshal_json: Option<MarshalFn>,
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Type {
    fn base(name: &str, named: bool, kind: Kind) -> Type {
        Type {
            name: name.to_owned(),
            named,
            kind,
            elem: None,
            key: None,
            len: 0,
            fields: Vec::new(),
            methods: Vec::new(),
            marshal_json: None,
        }
    }

    /// A predeclared basic type (`bool`, `int`, `float64`, `string`, ...).
    pub fn basic(kind: Kind) -> TypeRef {
        Arc::new(Type::base(kind.name(), true, kind))
    }

    /// A defined type (`type Number string`) with the underlying type `under` and the given
    /// methods. `name` is the qualified name Go prints (`json.Number`).
    pub fn named(name: &str, under: &TypeRef, methods: Vec<Method>) -> TypeRef {
        Arc::new(Type {
            name: name.to_owned(),
            named: true,
            kind: under.kind,
            elem: under.elem.clone(),
            key: under.key.clone(),
            len: under.len,
            fields: under.fields.clone(),
            methods,
            marshal_json: None,
        })
    }

    /// `[]elem`.
    pub fn slice(elem: &TypeRef) -> TypeRef {
        let mut t = Type::base(&format!("[]{}", elem.name), false, Kind::Slice);
        t.elem = Some(elem.clone());
        Arc::new(t)
    }

    /// `[n]elem`.
    pub fn array(elem: &TypeRef, n: usize) -> TypeRef {
        let mut t = Type::base(&format!("[{n}]{}", elem.name), false, Kind::Array);
        t.elem = Some(elem.clone());
        t.len = n;
        Arc::new(t)
    }

    /// `map[key]elem`.
    pub fn map(key: &TypeRef, elem: &TypeRef) -> TypeRef {
        let mut t = Type::base(&format!("map[{}]{}", key.name, elem.name), false, Kind::Map);
        t.key = Some(key.clone());
        t.elem = Some(elem.clone());
        Arc::new(t)
    }

    /// `*elem`.
    pub fn pointer(elem: &TypeRef) -> TypeRef {
        let mut t = Type::base(&format!("*{}", elem.name), false, Kind::Pointer);
        t.elem = Some(elem.clone());
        Arc::new(t)
    }

    /// A struct type named `name` (`types.ImageInspect`; `""` for `struct {...}` literals)
    /// with fields and methods.
    pub fn structure(name: &str, fields: Vec<Field>, methods: Vec<Method>) -> TypeRef {
        let (shown, named) = if name.is_empty() {
            let mut s = String::from("struct {");
            for (i, f) in fields.iter().enumerate() {
                s.push_str(if i == 0 { " " } else { "; " });
                if !f.embedded {
                    s.push_str(&f.name);
                    s.push(' ');
                }
                s.push_str(&f.ty.name);
            }
            s.push_str(if fields.is_empty() { "}" } else { " }" });
            (s, false)
        } else {
            (name.to_owned(), true)
        };
        let mut t = Type::base(&shown, named, Kind::Struct);
        t.fields = fields;
        t.methods = methods;
        Arc::new(t)
    }

    /// A function type.
    pub fn func(f: &Func) -> TypeRef {
        Arc::new(Type::base(&f.type_string(), false, Kind::Func))
    }

    /// The type with a custom `MarshalJSON` (its output must be compact JSON).
    pub fn with_marshal_json(self: &TypeRef, f: MarshalFn) -> TypeRef {
        Arc::new(Type {
            name: self.name.clone(),
            named: self.named,
            kind: self.kind,
            elem: self.elem.clone(),
            key: self.key.clone(),
            len: self.len,
            fields: self.fields.clone(),
            methods: self.methods.clone(),
            marshal_json: Some(f),
        })
    }

    /// Go's `Type.String()`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Element type of a slice, array, map or pointer.
    pub fn elem(&self) -> Option<&TypeRef> {
        self.elem.as_ref()
    }

    /// Key type of a map.
    pub fn key(&self) -> Option<&TypeRef> {
        self.key.as_ref()
    }

    /// Struct fields.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Its own methods (not promoted ones), in the order given.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The method named `name`, if the type has it.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }

    pub(crate) fn is_empty_interface(&self) -> bool {
        self.kind == Kind::Interface && self.methods.is_empty()
    }

    /// Go's type identity: named types by name, others by structure.
    pub fn identical(&self, other: &Type) -> bool {
        if self.named || other.named {
            return self.named == other.named && self.name == other.name && self.kind == other.kind;
        }
        self.kind == other.kind && self.name == other.name
    }

    fn underlying_identical(&self, other: &Type) -> bool {
        if self.kind != other.kind {
            return false;
        }
        let same = |a: &Option<TypeRef>, b: &Option<TypeRef>| match (a, b) {
            (Some(a), Some(b)) => a.identical(b),
            (None, None) => true,
            _ => false,
        };
        match self.kind {
            Kind::Slice | Kind::Pointer => same(&self.elem, &other.elem),
            Kind::Array => self.len == other.len && same(&self.elem, &other.elem),
            Kind::Map => same(&self.elem, &other.elem) && same(&self.key, &other.key),
            Kind::Struct => {
                self.fields.len() == other.fields.len()
                    && self
                        .fields
                        .iter()
                        .zip(&other.fields)
                        .all(|(a, b)| a.name == b.name && a.ty.identical(&b.ty))
            }
            Kind::Interface => self.methods.is_empty() && other.methods.is_empty(),
            Kind::Func => self.name == other.name,
            _ => true,
        }
    }

    /// Go's assignability of a value of this type to `to`.
    pub fn assignable_to(&self, to: &Type) -> bool {
        if self.identical(to) {
            return true;
        }
        if to.is_empty_interface() {
            return true;
        }
        if to.kind == Kind::Interface {
            return to
                .methods
                .iter()
                .all(|m| self.methods.iter().any(|n| n.name == m.name));
        }
        (!self.named || !to.named) && self.underlying_identical(to)
    }

    /// Whether values of the type may be nil.
    pub fn can_be_nil(&self) -> bool {
        matches!(
            self.kind,
            Kind::Func
                | Kind::Interface
                | Kind::Map
                | Kind::Pointer
                | Kind::Slice
                | Kind::ReflectValue
        )
    }

    /// A field by name, promoted ones included (breadth first, as Go's `FieldByName`):
    /// the index path and the field.
    pub fn field_by_name(&self, name: &str) -> Option<(Vec<usize>, &Field)> {
        if self.kind != Kind::Struct {
            return None;
        }
        let mut level: Vec<(Vec<usize>, &Type)> = vec![(Vec::new(), self)];
        for _ in 0..8 {
            let mut next = Vec::new();
            for (path, t) in &level {
                for (i, f) in t.fields.iter().enumerate() {
                    if f.name == name {
                        let mut p = path.clone();
                        p.push(i);
                        return Some((p, f));
                    }
                }
            }
            for (path, t) in &level {
                for (i, f) in t.fields.iter().enumerate() {
                    if f.embedded {
                        let inner = if f.ty.kind == Kind::Pointer {
                            f.ty.elem.as_deref()
                        } else {
                            Some(&*f.ty)
                        };
                        if let Some(inner) = inner.filter(|t| t.kind == Kind::Struct) {
                            let mut p = path.clone();
                            p.push(i);
                            next.push((p, inner));
                        }
                    }
                }
            }
            if next.is_empty() {
                return None;
            }
            level = next;
        }
        None
    }

    /// A method by name, promoted ones included.
    pub fn method_by_name(&self, name: &str) -> Option<&Method> {
        if let Some(m) = self.method(name) {
            return Some(m);
        }
        match self.kind {
            Kind::Pointer => self.elem.as_ref()?.method_by_name(name),
            _ => None,
        }
    }
}

/// The predeclared and standard types.
pub mod types {
    use super::*;

    macro_rules! basic {
        ($($(#[$doc:meta])* $fn:ident => $kind:ident),* $(,)?) => {
            $(
                $(#[$doc])*
                pub fn $fn() -> TypeRef {
                    static T: LazyLock<TypeRef> = LazyLock::new(|| Type::basic(Kind::$kind));
                    T.clone()
                }
            )*
        };
    }

    basic! {
        /// `bool`.
        bool => Bool,
        /// `int` (64 bits).
        int => Int,
        /// `int8`.
        int8 => Int8,
        /// `int16`.
        int16 => Int16,
        /// `int32`.
        int32 => Int32,
        /// `int64`.
        int64 => Int64,
        /// `uint`.
        uint => Uint,
        /// `uint8` (`byte`).
        uint8 => Uint8,
        /// `uint16`.
        uint16 => Uint16,
        /// `uint32`.
        uint32 => Uint32,
        /// `uint64`.
        uint64 => Uint64,
        /// `uintptr`.
        uintptr => Uintptr,
        /// `float32`.
        float32 => Float32,
        /// `float64`.
        float64 => Float64,
        /// `complex64`.
        complex64 => Complex64,
        /// `complex128`.
        complex128 => Complex128,
        /// `string`.
        string => String,
    }

    /// `interface {}`.
    pub fn any() -> TypeRef {
        static T: LazyLock<TypeRef> =
            LazyLock::new(|| Arc::new(Type::base("interface {}", false, Kind::Interface)));
        T.clone()
    }

    /// `error`.
    pub fn error() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| {
            let mut t = Type::base("error", true, Kind::Interface);
            t.methods.push(Method {
                name: "Error".to_owned(),
                func: Func::new(Vec::new(), string(), |_| Value::Invalid),
            });
            Arc::new(t)
        });
        T.clone()
    }

    /// `reflect.Value`, as the parameter type of builtins that take any value.
    pub fn reflect_value() -> TypeRef {
        static T: LazyLock<TypeRef> =
            LazyLock::new(|| Arc::new(Type::base("reflect.Value", true, Kind::ReflectValue)));
        T.clone()
    }

    /// `[]string`.
    pub fn string_slice() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| Type::slice(&string()));
        T.clone()
    }

    /// `[]interface {}`.
    pub fn any_slice() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| Type::slice(&any()));
        T.clone()
    }

    /// `map[string]string`.
    pub fn string_map() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| Type::map(&string(), &string()));
        T.clone()
    }

    /// `map[string]interface {}`.
    pub fn any_map() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| Type::map(&string(), &any()));
        T.clone()
    }

    /// `struct {}`.
    pub fn empty_struct() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| Type::structure("", Vec::new(), Vec::new()));
        T.clone()
    }

    /// `encoding/json`'s `Number` (a string kind with a `String` method; written as is).
    pub fn json_number() -> TypeRef {
        static T: LazyLock<TypeRef> = LazyLock::new(|| {
            let string_method = Method {
                name: "String".to_owned(),
                func: Func::new(Vec::new(), string(), |a| {
                    Value::string(a.first().and_then(Value::as_str).unwrap_or_default())
                }),
            };
            Type::named("json.Number", &string(), vec![string_method])
        });
        T.clone()
    }
}

/// The data of a value.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Complex(f64, f64),
    Str(Arc<str>),
    /// Slice or array elements; `None`: a nil slice.
    List(Option<Arc<[Value]>>),
    /// Map entries sorted by key as Go's `fmtsort` orders them; `None`: a nil map.
    Map(Option<Arc<[(Value, Value)]>>),
    Struct(Arc<[Value]>),
    /// Pointer or interface: `None` is nil.
    Ref(Option<Arc<Value>>),
    Func(Arc<Func>),
}

/// A Go value: [`Value::Invalid`] (no value, Go's invalid `reflect.Value` and what a nil
/// interface turns into) or a value of a [`Type`].
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// No value.
    #[default]
    Invalid,
    /// A value of a type.
    #[allow(private_interfaces)]
    Typed(TypeRef, Data),
}

impl Value {
    /// A `bool`.
    pub fn bool(b: bool) -> Value {
        Value::Typed(types::bool(), Data::Bool(b))
    }

    /// An `int`.
    pub fn int(i: i64) -> Value {
        Value::Typed(types::int(), Data::Int(i))
    }

    /// An `int64`.
    pub fn int64(i: i64) -> Value {
        Value::Typed(types::int64(), Data::Int(i))
    }

    /// A signed integer of type `ty` (a kind from `int` to `int64`).
    pub fn int_of(ty: &TypeRef, i: i64) -> Value {
        Value::Typed(ty.clone(), Data::Int(i))
    }

    /// An unsigned integer of type `ty`.
    pub fn uint_of(ty: &TypeRef, u: u64) -> Value {
        Value::Typed(ty.clone(), Data::Uint(u))
    }

    /// A `float64`.
    pub fn float64(f: f64) -> Value {
        Value::Typed(types::float64(), Data::Float(f))
    }

    /// A float of type `ty`.
    pub fn float_of(ty: &TypeRef, f: f64) -> Value {
        Value::Typed(ty.clone(), Data::Float(f))
    }

    /// A `complex128`.
    pub fn complex128(re: f64, im: f64) -> Value {
        Value::Typed(types::complex128(), Data::Complex(re, im))
    }

    /// A `string`.
    pub fn string(s: &str) -> Value {
        Value::Typed(types::string(), Data::Str(Arc::from(s)))
    }

    /// A string of a string-kinded type (`json.Number`, `nat.Port`).
    pub fn string_of(ty: &TypeRef, s: &str) -> Value {
        Value::Typed(ty.clone(), Data::Str(Arc::from(s)))
    }

    /// A slice of type `ty`; `None` is a nil slice.
    pub fn slice(ty: &TypeRef, items: Option<Vec<Value>>) -> Value {
        Value::Typed(ty.clone(), Data::List(items.map(Arc::from)))
    }

    /// An array of type `ty`.
    pub fn array(ty: &TypeRef, items: Vec<Value>) -> Value {
        Value::Typed(ty.clone(), Data::List(Some(Arc::from(items))))
    }

    /// A `[]string` (never nil).
    pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
        Value::slice(
            &types::string_slice(),
            Some(items.iter().map(|s| Value::string(s.as_ref())).collect()),
        )
    }

    /// A map of type `ty`; `None` is a nil map. Entries are sorted by key as Go's `fmtsort`
    /// does (numbers by value, strings by bytes, `false` before `true`); a later duplicate
    /// key replaces an earlier one.
    pub fn map(ty: &TypeRef, entries: Option<Vec<(Value, Value)>>) -> Value {
        let entries = entries.map(|mut e| {
            e.sort_by(|a, b| compare_keys(&a.0, &b.0));
            e.dedup_by(|later, earlier| {
                if compare_keys(&later.0, &earlier.0) == Ordering::Equal {
                    std::mem::swap(later, earlier);
                    true
                } else {
                    false
                }
            });
            Arc::from(e)
        });
        Value::Typed(ty.clone(), Data::Map(entries))
    }

    /// A struct of type `ty` (fields in order).
    pub fn structure(ty: &TypeRef, fields: Vec<Value>) -> Value {
        Value::Typed(ty.clone(), Data::Struct(Arc::from(fields)))
    }

    /// A pointer of type `ty` (`*T`) to `to`; `None` is nil.
    pub fn pointer(ty: &TypeRef, to: Option<Value>) -> Value {
        Value::Typed(ty.clone(), Data::Ref(to.map(Arc::new)))
    }

    /// `to` in an interface of type `ty` (`interface {}` for JSON-decoded values); `None`
    /// (or an invalid `to`) is a nil interface.
    pub fn interface(ty: &TypeRef, to: Option<Value>) -> Value {
        let to = to.filter(Value::is_valid);
        Value::Typed(ty.clone(), Data::Ref(to.map(Arc::new)))
    }

    /// `to` as an `interface {}` value.
    pub fn any(to: Value) -> Value {
        Value::interface(&types::any(), Some(to))
    }

    /// A function value.
    pub fn func(f: Func) -> Value {
        Value::Typed(Type::func(&f), Data::Func(Arc::new(f)))
    }

    /// The zero value of `ty`.
    pub fn zero(ty: &TypeRef) -> Value {
        let data = match ty.kind {
            Kind::Bool => Data::Bool(false),
            k if k.is_int() => Data::Int(0),
            k if k.is_uint() => Data::Uint(0),
            k if k.is_float() => Data::Float(0.0),
            k if k.is_complex() => Data::Complex(0.0, 0.0),
            Kind::String => Data::Str(Arc::from("")),
            Kind::Slice => Data::List(None),
            Kind::Array => {
                let elem = ty.elem.clone().unwrap_or_else(types::any);
                Data::List(Some(Arc::from(vec![Value::zero(&elem); ty.len])))
            }
            Kind::Map => Data::Map(None),
            Kind::Struct => Data::Struct(ty.fields.iter().map(|f| Value::zero(&f.ty)).collect()),
            Kind::ReflectValue => return Value::Invalid,
            _ => Data::Ref(None),
        };
        Value::Typed(ty.clone(), data)
    }

    /// Whether this is a value (not [`Value::Invalid`]).
    pub fn is_valid(&self) -> bool {
        !matches!(self, Value::Invalid)
    }

    /// Its type.
    pub fn ty(&self) -> Option<&TypeRef> {
        match self {
            Value::Invalid => None,
            Value::Typed(t, _) => Some(t),
        }
    }

    /// Its kind (`None` for [`Value::Invalid`]).
    pub fn kind(&self) -> Option<Kind> {
        self.ty().map(|t| t.kind)
    }

    pub(crate) fn data(&self) -> Option<&Data> {
        match self {
            Value::Invalid => None,
            Value::Typed(_, d) => Some(d),
        }
    }

    /// The string, for string kinds.
    pub fn as_str(&self) -> Option<&str> {
        match self.data() {
            Some(Data::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The bool, for bool kinds.
    pub fn as_bool(&self) -> Option<bool> {
        match self.data() {
            Some(Data::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The integer, for signed integer kinds.
    pub fn as_int(&self) -> Option<i64> {
        match self.data() {
            Some(Data::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// The integer, for unsigned integer kinds.
    pub fn as_uint(&self) -> Option<u64> {
        match self.data() {
            Some(Data::Uint(u)) => Some(*u),
            _ => None,
        }
    }

    /// The float, for float kinds.
    pub fn as_float(&self) -> Option<f64> {
        match self.data() {
            Some(Data::Float(f)) => Some(*f),
            _ => None,
        }
    }

    /// Elements of a slice or array (empty for nil).
    pub fn elems(&self) -> &[Value] {
        match self.data() {
            Some(Data::List(Some(l))) => l,
            _ => &[],
        }
    }

    /// Entries of a map (sorted; empty for nil).
    pub fn entries(&self) -> &[(Value, Value)] {
        match self.data() {
            Some(Data::Map(Some(m))) => m,
            _ => &[],
        }
    }

    /// Fields of a struct.
    pub fn fields(&self) -> &[Value] {
        match self.data() {
            Some(Data::Struct(f)) => f,
            _ => &[],
        }
    }

    /// What a pointer or interface refers to (`None`: nil, or not a pointer).
    pub fn deref(&self) -> Option<&Value> {
        match self.data() {
            Some(Data::Ref(r)) => r.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn func_ref(&self) -> Option<&Func> {
        match self.data() {
            Some(Data::Func(f)) => Some(f),
            _ => None,
        }
    }

    /// Whether a nil-able value is nil (`false` for other kinds).
    pub fn is_nil(&self) -> bool {
        match self.data() {
            None => true,
            Some(Data::List(l)) => l.is_none() && self.kind() == Some(Kind::Slice),
            Some(Data::Map(m)) => m.is_none(),
            Some(Data::Ref(r)) => r.is_none(),
            _ => false,
        }
    }

    /// Length of a string (bytes), slice, array or map.
    pub fn len(&self) -> Option<usize> {
        match self.data()? {
            Data::Str(s) => Some(s.len()),
            Data::List(l) => Some(l.as_ref().map_or(0, |l| l.len())),
            Data::Map(m) => Some(m.as_ref().map_or(0, |m| m.len())),
            _ => None,
        }
    }

    /// Whether [`Value::len`] is zero or none.
    pub fn is_empty(&self) -> bool {
        self.len().unwrap_or(0) == 0
    }

    /// An interface's dynamic value (Go's `indirectInterface`): nil interfaces become
    /// [`Value::Invalid`]; other values are returned as they are.
    pub fn indirect_interface(&self) -> Value {
        if self.kind() == Some(Kind::Interface) {
            return self.deref().cloned().unwrap_or(Value::Invalid);
        }
        self.clone()
    }

    /// Go's `indirect`: through pointers and interfaces until a non-pointer or a nil one;
    /// `true` when it stopped at a nil.
    pub fn indirect(&self) -> (Value, bool) {
        let mut v = self.clone();
        while matches!(v.kind(), Some(Kind::Pointer | Kind::Interface)) {
            match v.deref() {
                Some(inner) => v = inner.clone(),
                None => return (v, true),
            }
        }
        (v, false)
    }

    /// The value with the same data and another type (Go's conversion between types of the
    /// same underlying type).
    pub fn convert(&self, ty: &TypeRef) -> Value {
        match self {
            Value::Invalid => Value::Invalid,
            Value::Typed(_, d) => Value::Typed(ty.clone(), d.clone()),
        }
    }
}

/// Go's `fmtsort` order of map keys of basic kinds.
pub(crate) fn compare_keys(a: &Value, b: &Value) -> Ordering {
    match (a.data(), b.data()) {
        (Some(Data::Int(x)), Some(Data::Int(y))) => x.cmp(y),
        (Some(Data::Uint(x)), Some(Data::Uint(y))) => x.cmp(y),
        (Some(Data::Str(x)), Some(Data::Str(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(Data::Bool(x)), Some(Data::Bool(y))) => x.cmp(y),
        (Some(Data::Float(x)), Some(Data::Float(y))) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        },
        (Some(Data::Ref(x)), Some(Data::Ref(y))) => match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => compare_keys(x, y),
        },
        _ => Ordering::Equal,
    }
}
