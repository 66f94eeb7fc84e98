//! WebAssembly types and values as the interpreter's embedder sees them.
//!
//! Inside the interpreter every value is an untyped 64-bit slot (see `exec.rs`); these
//! types exist at the boundary: imports, exports, invocation arguments and results.

use std::fmt;

/// A value type of WebAssembly 2.0 without SIMD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValType {
    I32,
    I64,
    F32,
    F64,
    FuncRef,
    ExternRef,
}

impl ValType {
    pub(crate) fn from_wasmparser(ty: wasmparser::ValType) -> Option<ValType> {
        Some(match ty {
            wasmparser::ValType::I32 => ValType::I32,
            wasmparser::ValType::I64 => ValType::I64,
            wasmparser::ValType::F32 => ValType::F32,
            wasmparser::ValType::F64 => ValType::F64,
            wasmparser::ValType::Ref(r) if r == wasmparser::RefType::FUNCREF => ValType::FuncRef,
            wasmparser::ValType::Ref(r) if r == wasmparser::RefType::EXTERNREF => {
                ValType::ExternRef
            }
            _ => return None,
        })
    }

    /// The zero value of this type: what a fresh local holds.
    pub fn default_value(self) -> Value {
        match self {
            ValType::I32 => Value::I32(0),
            ValType::I64 => Value::I64(0),
            ValType::F32 => Value::F32(0),
            ValType::F64 => Value::F64(0),
            ValType::FuncRef => Value::FuncRef(None),
            ValType::ExternRef => Value::ExternRef(None),
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
        })
    }
}

/// A function signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FuncType {
    pub params: Vec<ValType>,
    pub results: Vec<ValType>,
}

impl FuncType {
    pub fn new(params: impl Into<Vec<ValType>>, results: impl Into<Vec<ValType>>) -> FuncType {
        FuncType {
            params: params.into(),
            results: results.into(),
        }
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(f, "[{}] -> [{}]", list(&self.params), list(&self.results))
    }
}

/// Size limits of a table or memory, in elements or 64 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min: u32,
    pub max: Option<u32>,
}

impl Limits {
    /// Import matching (spec 4.5.5.1): the provided limits must lie within the expected.
    pub fn matches(&self, expected: &Limits) -> bool {
        self.min >= expected.min
            && match (self.max, expected.max) {
                (_, None) => true,
                (Some(have), Some(want)) => have <= want,
                (None, Some(_)) => false,
            }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableType {
    pub elem: ValType,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryType {
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalType {
    pub ty: ValType,
    pub mutable: bool,
}

/// The type of something a module imports or exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternType {
    Func(FuncType),
    Table(TableType),
    Memory(MemoryType),
    Global(GlobalType),
}

impl ExternType {
    pub fn kind_name(&self) -> &'static str {
        match self {
            ExternType::Func(_) => "function",
            ExternType::Table(_) => "table",
            ExternType::Memory(_) => "memory",
            ExternType::Global(_) => "global",
        }
    }
}

/// Address of a function in a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FuncAddr(pub(crate) u32);
/// Address of a table in a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableAddr(pub(crate) u32);
/// Address of a linear memory in a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemAddr(pub(crate) u32);
/// Address of a global in a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalAddr(pub(crate) u32);
/// An instantiated module in a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub(crate) u32);

/// Something that can be imported or exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extern {
    Func(FuncAddr),
    Table(TableAddr),
    Memory(MemAddr),
    Global(GlobalAddr),
}

/// A typed WebAssembly value. Floats are kept as their bit patterns so NaN payloads
/// survive every boundary unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    FuncRef(Option<FuncAddr>),
    /// A host reference; the number is the host's own, kiln never interprets it.
    ExternRef(Option<u32>),
}

impl Value {
    pub fn ty(&self) -> ValType {
        match self {
            Value::I32(_) => ValType::I32,
            Value::I64(_) => ValType::I64,
            Value::F32(_) => ValType::F32,
            Value::F64(_) => ValType::F64,
            Value::FuncRef(_) => ValType::FuncRef,
            Value::ExternRef(_) => ValType::ExternRef,
        }
    }

    /// The untyped slot the interpreter keeps this value in. References are stored as
    /// `address + 1`, so 0 is null.
    pub(crate) fn to_slot(self) -> u64 {
        match self {
            Value::I32(v) => v as u32 as u64,
            Value::I64(v) => v as u64,
            Value::F32(v) => v as u64,
            Value::F64(v) => v,
            Value::FuncRef(r) => r.map_or(0, |a| a.0 as u64 + 1),
            Value::ExternRef(r) => r.map_or(0, |a| a as u64 + 1),
        }
    }

    /// Reads a slot back as a value of type `ty`.
    pub(crate) fn from_slot(slot: u64, ty: ValType) -> Value {
        match ty {
            ValType::I32 => Value::I32(slot as u32 as i32),
            ValType::I64 => Value::I64(slot as i64),
            ValType::F32 => Value::F32(slot as u32),
            ValType::F64 => Value::F64(slot),
            ValType::FuncRef => Value::FuncRef(slot.checked_sub(1).map(|a| FuncAddr(a as u32))),
            ValType::ExternRef => Value::ExternRef(slot.checked_sub(1).map(|a| a as u32)),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(v) => write!(f, "{v}:i32"),
            Value::I64(v) => write!(f, "{v}:i64"),
            Value::F32(b) => write!(f, "{}:f32", f32::from_bits(*b)),
            Value::F64(b) => write!(f, "{}:f64", f64::from_bits(*b)),
            Value::FuncRef(None) | Value::ExternRef(None) => write!(f, "null"),
            Value::FuncRef(Some(a)) => write!(f, "func@{}", a.0),
            Value::ExternRef(Some(a)) => write!(f, "extern@{a}"),
        }
    }
}
