//! The canonical text form of a trace: what people read, what golden files hold, and what
//! tests are written in. [`parse`] reads back exactly what `Display` prints
//! (print → parse is the identity), and checks the result with [`validate`].
//!
//! ```text
//! ;; a comment runs to the end of its line
//! trace func=3 anchor=0x4a kind=loop hits=120000 module=9f86d0… locals=3
//!   in  v0:i32 = slot 0
//!   in  v2:i32 = global 0
//!   v3:i32 = i32.xor v0 v1
//!   v4:i32 = i32.and v3 255
//!   v5:f64 = select v6 v7 v4
//!   v6:i32 = i32.load8_u offset=1024 v4
//!   i32.store offset=8 v4 v6
//!   global.set 0 v9
//!   v8:i32 = memory.grow 1
//!   guard v10 else exit 1 pc=57 @0x62 [s0=v8 s1=v9 s2=v2]
//!   guard !v11 else exit 2 pc=60 @0x66 []
//!   loop [s0=v8 s1=v9 s2=v2]
//! ```
//!
//! The grammar, a line at a time (blank lines and `;;` comments are ignored, tokens are
//! separated by spaces, `[` and `]` stand alone):
//!
//! ```text
//! header  = "trace" [provenance] "locals=" u32
//!           provenance = "func=" u32 "anchor=" u32 "kind=" ("loop" | "entry")
//!                        "hits=" u64 "module=" hex   (all or none, in any order)
//! input   = "in" value ":" type "=" ("slot" | "global") u32
//! inst    = value ":" type "=" numop operand*          ;; as many as the operator takes
//!         | value ":" type "=" "select" operand operand operand   ;; a b cond: a if cond != 0
//!         | value ":" type "=" loadop ["offset=" u32] operand
//!         | value ":" "i32" "=" "memory.size"
//!         | value ":" "i32" "=" "memory.grow" operand
//!         | storeop ["offset=" u32] operand operand  ;; address, value
//!         | "global.set" u32 raw
//!         | "guard" ["!"] operand "else" exit        ;; `!`: continue only if zero
//! end     = "loop" state | exit
//! exit    = "exit" u32 "pc=" u32 "@" u32 call* state ;; id, pc, wasm offset (printed in hex)
//! call    = "in" "f" u32 "s" u32 "ret=" u32          ;; inlined callee, its frame's base
//!                                                    ;; slot, the caller's return pc
//! state   = "[" ("s" u32 "=" raw)* "]"               ;; slots in increasing order
//! value   = "v" u32
//! operand = value | constant of the operand's type
//! raw     = value | u64                              ;; an untyped 64-bit slot value
//! ```
//!
//! Numbers are decimal or `0x` hex. The printer writes integer constants in signed
//! decimal; float constants in the shortest decimal that reads back to the same bits
//! (`1.5`, `-0.0`, `inf`), or, for NaNs, as their bits with the type (`f32:0x7fc00001`);
//! raw constants in decimal below 65536 and in hex from there (addresses, bit patterns).
//! Every value's type is written where it is defined.

use std::fmt;

use crate::trace::{
    AnchorKind, End, Exit, Expect, InlinedCall, Input, Inst, LoadKind, NumOp, Operand, Provenance,
    Source, StoreKind, Trace, Type, ValueId,
};
use crate::validate::{validate, Site};

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_trace(f, self, None)
    }
}

/// The text form, with the header carrying `provenance` if given.
pub fn print_with_provenance(trace: &Trace, provenance: Option<&Provenance>) -> String {
    let mut out = String::new();
    write_trace(&mut out, trace, provenance).expect("writing to a String cannot fail");
    out
}

fn write_trace(
    f: &mut impl fmt::Write,
    trace: &Trace,
    provenance: Option<&Provenance>,
) -> fmt::Result {
    f.write_str("trace")?;
    if let Some(p) = provenance {
        write!(
            f,
            " func={} anchor={:#x} kind={} hits={} module={}",
            p.func_index,
            p.anchor_offset,
            p.kind.name(),
            p.hits,
            p.module_hash
        )?;
    }
    writeln!(f, " locals={}", trace.locals)?;
    for input in &trace.inputs {
        let (what, index) = match input.source {
            Source::Slot(s) => ("slot", s),
            Source::Global(g) => ("global", g),
        };
        writeln!(f, "  in  {}:{} = {what} {index}", input.value, input.ty)?;
    }
    for inst in &trace.body {
        f.write_str("  ")?;
        write_inst(f, inst)?;
        f.write_char('\n')?;
    }
    f.write_str("  ")?;
    match &trace.end {
        End::Loop { state } => {
            f.write_str("loop ")?;
            write_state(f, state)?;
        }
        End::Exit(exit) => write_exit(f, exit)?,
    }
    f.write_char('\n')
}

fn write_inst(f: &mut impl fmt::Write, inst: &Inst) -> fmt::Result {
    if let Some((dst, ty)) = inst.def() {
        write!(f, "{dst}:{ty} = ")?;
    }
    match inst {
        Inst::Num { op, args, .. } => {
            f.write_str(op.name())?;
            for (&arg, &ty) in args.iter().zip(op.params()) {
                f.write_char(' ')?;
                write_operand(f, arg, Expect::Typed(ty))?;
            }
            // Arguments beyond the operator's arity (an invalid trace) still show.
            for &arg in args.iter().skip(op.params().len()) {
                f.write_char(' ')?;
                write_operand(f, arg, Expect::Raw)?;
            }
            Ok(())
        }
        Inst::Select { ty, cond, a, b, .. } => {
            f.write_str("select ")?;
            write_operand(f, *a, Expect::Typed(*ty))?;
            f.write_char(' ')?;
            write_operand(f, *b, Expect::Typed(*ty))?;
            f.write_char(' ')?;
            write_operand(f, *cond, Expect::Typed(Type::I32))
        }
        Inst::Load {
            kind, offset, addr, ..
        } => {
            f.write_str(kind.name())?;
            write_offset(f, *offset)?;
            f.write_char(' ')?;
            write_operand(f, *addr, Expect::Typed(Type::I32))
        }
        Inst::Store {
            kind,
            offset,
            addr,
            value,
        } => {
            f.write_str(kind.name())?;
            write_offset(f, *offset)?;
            f.write_char(' ')?;
            write_operand(f, *addr, Expect::Typed(Type::I32))?;
            f.write_char(' ')?;
            write_operand(f, *value, Expect::Typed(kind.operand()))
        }
        Inst::GlobalSet { global, value } => {
            write!(f, "global.set {global} ")?;
            write_operand(f, *value, Expect::Raw)
        }
        Inst::MemorySize { .. } => f.write_str("memory.size"),
        Inst::MemoryGrow { delta, .. } => {
            f.write_str("memory.grow ")?;
            write_operand(f, *delta, Expect::Typed(Type::I32))
        }
        Inst::Guard { cond, expect, exit } => {
            f.write_str(if *expect { "guard " } else { "guard !" })?;
            write_operand(f, *cond, Expect::Typed(Type::I32))?;
            f.write_str(" else ")?;
            write_exit(f, exit)
        }
    }
}

fn write_offset(f: &mut impl fmt::Write, offset: u32) -> fmt::Result {
    if offset != 0 {
        write!(f, " offset={offset}")?;
    }
    Ok(())
}

fn write_exit(f: &mut impl fmt::Write, exit: &Exit) -> fmt::Result {
    write!(f, "exit {} pc={} @{:#x} ", exit.id, exit.pc, exit.offset)?;
    for call in &exit.calls {
        write!(
            f,
            "in f{} s{} ret={} ",
            call.func, call.base, call.return_pc
        )?;
    }
    write_state(f, &exit.state)
}

fn write_state(f: &mut impl fmt::Write, state: &[(u32, Operand)]) -> fmt::Result {
    f.write_char('[')?;
    for (i, &(slot, operand)) in state.iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        write!(f, "s{slot}=")?;
        write_operand(f, operand, Expect::Raw)?;
    }
    f.write_char(']')
}

fn write_operand(f: &mut impl fmt::Write, operand: Operand, expect: Expect) -> fmt::Result {
    match operand {
        Operand::Value(v) => write!(f, "{v}"),
        Operand::Const(c) => f.write_str(&constant_text(c, expect)),
    }
}

/// Below this a raw (untyped) constant is printed in decimal: small counts and offsets,
/// which read the same as any integer type. From here on it is more likely an address,
/// a negative number or a float's bits, which read better in hex.
const RAW_DECIMAL_LIMIT: u64 = 1 << 16;

/// A constant as the text form writes it where `expect` says its type.
pub fn constant_text(bits: u64, expect: Expect) -> String {
    match expect {
        Expect::Typed(Type::I32) if Type::I32.holds(bits) => (bits as u32 as i32).to_string(),
        Expect::Typed(Type::I64) => (bits as i64).to_string(),
        Expect::Typed(Type::F32) if Type::F32.holds(bits) => {
            let x = f32::from_bits(bits as u32);
            let decimal = format!("{x:?}");
            if !x.is_nan() && decimal.parse::<f32>().map(f32::to_bits) == Ok(bits as u32) {
                decimal
            } else {
                format!("f32:{bits:#010x}")
            }
        }
        Expect::Typed(Type::F64) => {
            let x = f64::from_bits(bits);
            let decimal = format!("{x:?}");
            if !x.is_nan() && decimal.parse::<f64>().map(f64::to_bits) == Ok(bits) {
                decimal
            } else {
                format!("f64:{bits:#018x}")
            }
        }
        // Raw, or a 32-bit type given too many bits (an invalid trace): show every bit.
        _ if bits < RAW_DECIMAL_LIMIT => bits.to_string(),
        _ => format!("{bits:#x}"),
    }
}

/// A text form that does not parse: where (1-based line and column) and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Reads a trace; a provenance in the header is accepted and dropped.
pub fn parse(text: &str) -> Result<Trace, ParseError> {
    parse_with_provenance(text).map(|(trace, _)| trace)
}

/// Reads a trace and the provenance its header carries, if any.
pub fn parse_with_provenance(text: &str) -> Result<(Trace, Option<Provenance>), ParseError> {
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .map(|(i, line)| Line::new(i + 1, line))
        .filter(|line| !line.tokens.is_empty())
        .collect();
    let mut parser = Parser {
        positions: Positions::default(),
    };
    let mut lines = lines.iter();
    let Some(header) = lines.next() else {
        let line = text.lines().count().max(1);
        return Err(ParseError {
            line,
            column: 1,
            message: "expected a trace header (`trace locals=N`), found end of input".into(),
        });
    };
    let (locals, provenance) = parser.header(header)?;
    let mut inputs = Vec::new();
    let mut body = Vec::new();
    let mut end = None;
    for line in lines {
        let c = Cursor::new(line);
        if end.is_some() {
            return Err(c.error_here("expected nothing after the end of the trace"));
        }
        let first = c.peek().expect("lines without tokens were dropped");
        match first.text {
            "in" => {
                if !body.is_empty() {
                    return Err(
                        c.error_here("expected an instruction: inputs come before the body")
                    );
                }
                inputs.push(parser.input(c)?);
            }
            "loop" | "exit" => end = Some(parser.end(c)?),
            _ => body.push(parser.inst(c)?),
        }
    }
    let Some(end) = end else {
        let (line, column) = match text.lines().enumerate().last() {
            Some((i, l)) => (i + 1, l.chars().count() + 1),
            None => (1, 1),
        };
        let message =
            "expected the end of the trace (`loop [...]` or `exit ...`), found end of input".into();
        return Err(ParseError {
            line,
            column,
            message,
        });
    };
    let trace = Trace {
        locals,
        inputs,
        body,
        end,
    };
    if let Err(e) = validate(&trace) {
        let (line, column) = parser.positions.of(e.site);
        return Err(ParseError {
            line,
            column,
            message: e.message,
        });
    }
    Ok((trace, provenance))
}

/// A token and its 1-based column.
#[derive(Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    column: usize,
}

struct Line<'a> {
    number: usize,
    tokens: Vec<Token<'a>>,
    /// The column just past the last token, where "found end of line" points.
    end_column: usize,
}

impl<'a> Line<'a> {
    fn new(number: usize, text: &'a str) -> Line<'a> {
        let text = match text.find(";;") {
            Some(i) => &text[..i],
            None => text,
        };
        let mut tokens = Vec::new();
        let mut start: Option<usize> = None;
        let mut column = 0;
        let mut start_column = 0;
        for (i, ch) in text.char_indices() {
            column += 1;
            let alone = ch == '[' || ch == ']';
            if ch.is_whitespace() || alone {
                if let Some(s) = start.take() {
                    tokens.push(Token {
                        text: &text[s..i],
                        column: start_column,
                    });
                }
                if alone {
                    tokens.push(Token {
                        text: &text[i..i + 1],
                        column,
                    });
                }
            } else if start.is_none() {
                start = Some(i);
                start_column = column;
            }
        }
        if let Some(s) = start {
            tokens.push(Token {
                text: &text[s..],
                column: start_column,
            });
        }
        let end_column = tokens
            .last()
            .map_or(1, |t| t.column + t.text.chars().count());
        Line {
            number,
            tokens,
            end_column,
        }
    }
}

struct Cursor<'l, 'a> {
    line: &'l Line<'a>,
    next: usize,
}

impl<'l, 'a> Cursor<'l, 'a> {
    fn new(line: &'l Line<'a>) -> Self {
        Cursor { line, next: 0 }
    }

    fn peek(&self) -> Option<Token<'a>> {
        self.line.tokens.get(self.next).copied()
    }

    /// The next token, which should be `what`.
    fn token(&mut self, what: &str) -> Result<Token<'a>, ParseError> {
        match self.peek() {
            Some(t) => {
                self.next += 1;
                Ok(t)
            }
            None => Err(self.error(
                self.line.end_column,
                format!("expected {what}, found end of line"),
            )),
        }
    }

    /// The next token, which must be exactly `word`.
    fn word(&mut self, word: &str) -> Result<Token<'a>, ParseError> {
        let t = self.token(&format!("`{word}`"))?;
        if t.text != word {
            return Err(self.unexpected(t, &format!("`{word}`")));
        }
        Ok(t)
    }

    fn finish(&self) -> Result<(), ParseError> {
        match self.peek() {
            Some(t) => Err(self.unexpected(t, "end of line")),
            None => Ok(()),
        }
    }

    fn error(&self, column: usize, message: String) -> ParseError {
        ParseError {
            line: self.line.number,
            column,
            message,
        }
    }

    fn error_here(&self, message: &str) -> ParseError {
        let column = self.peek().map_or(self.line.end_column, |t| t.column);
        self.error(column, message.to_string())
    }

    fn unexpected(&self, t: Token, what: &str) -> ParseError {
        self.error(t.column, format!("expected {what}, found `{}`", t.text))
    }
}

/// Where each part of the trace was written, to place validation errors.
#[derive(Default)]
struct Positions {
    inputs: Vec<(usize, usize)>,
    /// Each instruction's line, its first column, and its operands' columns in the
    /// order of `Inst::operands`.
    insts: Vec<(usize, usize, Vec<usize>)>,
    end: (usize, usize, Vec<usize>),
}

impl Positions {
    fn of(&self, site: Site) -> (usize, usize) {
        let place = |(line, column, operands): &(usize, usize, Vec<usize>), o: Option<usize>| {
            (
                *line,
                o.and_then(|o| operands.get(o).copied()).unwrap_or(*column),
            )
        };
        match site {
            Site::Input(i) => self.inputs[i],
            Site::Inst { index, operand } => place(&self.insts[index], operand),
            Site::End { operand } => place(&self.end, operand),
        }
    }
}

struct Parser {
    positions: Positions,
}

const PROVENANCE_KEYS: [&str; 5] = ["func", "anchor", "kind", "hits", "module"];

impl Parser {
    fn header(&mut self, line: &Line) -> Result<(u32, Option<Provenance>), ParseError> {
        let mut c = Cursor::new(line);
        c.word("trace")?;
        let mut locals = None;
        let (mut func, mut anchor, mut kind, mut hits, mut module) = (None, None, None, None, None);
        let expected = "`locals=`, `func=`, `anchor=`, `kind=`, `hits=` or `module=`";
        while let Some(t) = c.peek() {
            c.next += 1;
            let Some((key, value)) = t.text.split_once('=') else {
                return Err(c.unexpected(t, expected));
            };
            let v = Token {
                text: value,
                column: t.column + key.len() + 1,
            };
            let seen = match key {
                "locals" => locals.replace(number::<u32>(&c, v)?).is_some(),
                "func" => func.replace(number::<u32>(&c, v)?).is_some(),
                "anchor" => anchor.replace(number::<u32>(&c, v)?).is_some(),
                "hits" => hits.replace(number::<u64>(&c, v)?).is_some(),
                "kind" => {
                    let k = match value {
                        "loop" => AnchorKind::Loop,
                        "entry" => AnchorKind::FuncEntry,
                        _ => return Err(c.unexpected(v, "`loop` or `entry`")),
                    };
                    kind.replace(k).is_some()
                }
                "module" => {
                    if value.is_empty() || !value.chars().all(|ch| ch.is_ascii_hexdigit()) {
                        return Err(c.unexpected(v, "the module's hash in hex"));
                    }
                    module.replace(value.to_string()).is_some()
                }
                _ => return Err(c.unexpected(t, expected)),
            };
            if seen {
                return Err(c.error(t.column, format!("`{key}=` is given twice")));
            }
        }
        let Some(locals) = locals else {
            return Err(c.error(
                line.end_column,
                "expected `locals=`, found end of line".into(),
            ));
        };
        let provenance = match (func, anchor, kind, hits, module) {
            (Some(func_index), Some(anchor_offset), Some(kind), Some(hits), Some(module_hash)) => {
                Some(Provenance {
                    module_hash,
                    func_index,
                    anchor_offset,
                    kind,
                    hits,
                })
            }
            (None, None, None, None, None) => None,
            (func, anchor, kind, hits, module) => {
                let given = [
                    func.is_some(),
                    anchor.is_some(),
                    kind.is_some(),
                    hits.is_some(),
                    module.is_some(),
                ];
                let missing =
                    PROVENANCE_KEYS[given.iter().position(|g| !g).expect("one is missing")];
                let message = format!("expected `{missing}=`: a provenance has all of func, anchor, kind, hits and module, or none");
                return Err(c.error(line.end_column, message));
            }
        };
        Ok((locals, provenance))
    }

    fn input(&mut self, mut c: Cursor) -> Result<Input, ParseError> {
        c.word("in")?;
        let (value, ty, column) = typed_value(&mut c)?;
        c.word("=")?;
        let t = c.token("`slot` or `global`")?;
        let source: fn(u32) -> Source = match t.text {
            "slot" => Source::Slot,
            "global" => Source::Global,
            _ => return Err(c.unexpected(t, "`slot` or `global`")),
        };
        let index = c.token("an index")?;
        let source = source(number::<u32>(&c, index)?);
        c.finish()?;
        self.positions.inputs.push((c.line.number, column));
        Ok(Input { value, ty, source })
    }

    fn inst(&mut self, mut c: Cursor) -> Result<Inst, ParseError> {
        let first = c.peek().expect("a line has a token");
        let line_start = first.column;
        let mut columns = Vec::new();
        let inst = if first.text.starts_with('v') && first.text.contains(':') {
            let (dst, ty, _) = typed_value(&mut c)?;
            c.word("=")?;
            let name = c.token("an operator")?;
            let give = |want: Type| {
                if want == ty {
                    Ok(())
                } else {
                    Err(c.error(
                        first.column + first.text.find(':').unwrap_or(0) + 1,
                        format!("`{}` gives {want}, not {ty}", name.text),
                    ))
                }
            };
            if let Some(op) = NumOp::from_name(name.text) {
                give(op.result())?;
                let args = op
                    .params()
                    .iter()
                    .map(|&p| operand(&mut c, Expect::Typed(p), &mut columns))
                    .collect::<Result<_, _>>()?;
                Inst::Num { dst, op, args }
            } else if let Some(kind) = LoadKind::from_name(name.text) {
                give(kind.result())?;
                let offset = offset(&mut c)?;
                let addr = operand(&mut c, Expect::Typed(Type::I32), &mut columns)?;
                Inst::Load {
                    dst,
                    kind,
                    offset,
                    addr,
                }
            } else {
                match name.text {
                    "select" => {
                        let a = operand(&mut c, Expect::Typed(ty), &mut columns)?;
                        let b = operand(&mut c, Expect::Typed(ty), &mut columns)?;
                        let cond = operand(&mut c, Expect::Typed(Type::I32), &mut columns)?;
                        Inst::Select {
                            dst,
                            ty,
                            cond,
                            a,
                            b,
                        }
                    }
                    "memory.size" => {
                        give(Type::I32)?;
                        Inst::MemorySize { dst }
                    }
                    "memory.grow" => {
                        give(Type::I32)?;
                        let delta = operand(&mut c, Expect::Typed(Type::I32), &mut columns)?;
                        Inst::MemoryGrow { dst, delta }
                    }
                    _ => {
                        return Err(c.unexpected(
                            name,
                            "an operator (`i32.add`, `select`, `i32.load`, `memory.grow`, ...)",
                        ))
                    }
                }
            }
        } else if let Some(kind) = StoreKind::from_name(first.text) {
            c.next += 1;
            let offset = offset(&mut c)?;
            let addr = operand(&mut c, Expect::Typed(Type::I32), &mut columns)?;
            let value = operand(&mut c, Expect::Typed(kind.operand()), &mut columns)?;
            Inst::Store {
                kind,
                offset,
                addr,
                value,
            }
        } else if first.text == "global.set" {
            c.next += 1;
            let t = c.token("a global index")?;
            let global = number::<u32>(&c, t)?;
            let value = operand(&mut c, Expect::Raw, &mut columns)?;
            Inst::GlobalSet { global, value }
        } else if first.text == "guard" {
            c.next += 1;
            let (expect, cond) = match c.peek() {
                // `!v3`: the operand after the `!` is read as a token of its own.
                Some(t) if t.text.starts_with('!') => {
                    let rest = Token {
                        text: &t.text[1..],
                        column: t.column + 1,
                    };
                    if rest.text.is_empty() {
                        return Err(c.unexpected(t, "an operand right after `!`"));
                    }
                    c.next += 1;
                    columns.push(rest.column);
                    (false, operand_token(&c, rest, Expect::Typed(Type::I32))?)
                }
                _ => (
                    true,
                    operand(&mut c, Expect::Typed(Type::I32), &mut columns)?,
                ),
            };
            c.word("else")?;
            let exit = exit(&mut c, &mut columns)?;
            Inst::Guard { cond, expect, exit }
        } else {
            return Err(c.unexpected(
                first,
                "an instruction (`vN:type = ...`, a store, `global.set`, `guard`) or the end (`loop`, `exit`)",
            ));
        };
        c.finish()?;
        self.positions
            .insts
            .push((c.line.number, line_start, columns));
        Ok(inst)
    }

    fn end(&mut self, mut c: Cursor) -> Result<End, ParseError> {
        let first = c.peek().expect("a line has a token");
        let mut columns = Vec::new();
        let end = if first.text == "loop" {
            c.next += 1;
            End::Loop {
                state: state(&mut c, &mut columns)?,
            }
        } else {
            End::Exit(exit(&mut c, &mut columns)?)
        };
        c.finish()?;
        self.positions.end = (c.line.number, first.column, columns);
        Ok(end)
    }
}

/// `vN:type`, with the column of the value.
fn typed_value(c: &mut Cursor) -> Result<(ValueId, Type, usize), ParseError> {
    let t = c.token("a value and its type (`v0:i32`)")?;
    let Some((name, ty)) = t.text.split_once(':') else {
        return Err(c.unexpected(t, "a value and its type (`v0:i32`)"));
    };
    let value = value_id(
        c,
        Token {
            text: name,
            column: t.column,
        },
    )?;
    let ty_token = Token {
        text: ty,
        column: t.column + name.len() + 1,
    };
    let ty = Type::from_name(ty)
        .ok_or_else(|| c.unexpected(ty_token, "a type (`i32`, `i64`, `f32`, `f64`)"))?;
    Ok((value, ty, t.column))
}

fn value_id(c: &Cursor, t: Token) -> Result<ValueId, ParseError> {
    match t.text.strip_prefix('v') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().map(ValueId).map_err(|_| {
                c.error(
                    t.column,
                    format!("value number `{}` is too large for u32", t.text),
                )
            })
        }
        _ => Err(c.unexpected(t, "a value (`v0`)")),
    }
}

/// An optional `offset=N`.
fn offset(c: &mut Cursor) -> Result<u32, ParseError> {
    match c.peek() {
        Some(t) if t.text.starts_with("offset=") => {
            c.next += 1;
            number::<u32>(
                c,
                Token {
                    text: &t.text[7..],
                    column: t.column + 7,
                },
            )
        }
        _ => Ok(0),
    }
}

fn exit(c: &mut Cursor, columns: &mut Vec<usize>) -> Result<Exit, ParseError> {
    c.word("exit")?;
    let t = c.token("the exit's id")?;
    let id = number::<u32>(c, t)?;
    let pc = key_number(c, "pc=")?;
    let offset = key_number(c, "@")?;
    let mut calls = Vec::new();
    while c.peek().is_some_and(|t| t.text == "in") {
        c.next += 1;
        calls.push(InlinedCall {
            func: key_number(c, "f")?,
            base: key_number(c, "s")?,
            return_pc: key_number(c, "ret=")?,
        });
    }
    let state = state(c, columns)?;
    Ok(Exit {
        id,
        pc,
        offset,
        state,
        calls,
    })
}

/// `<key><u32>`, as in `pc=57` or `@0x62`.
fn key_number(c: &mut Cursor, key: &str) -> Result<u32, ParseError> {
    let what = format!("`{key}N`");
    let t = c.token(&what)?;
    match t.text.strip_prefix(key) {
        Some(rest) => number::<u32>(
            c,
            Token {
                text: rest,
                column: t.column + key.len(),
            },
        ),
        None => Err(c.unexpected(t, &what)),
    }
}

fn state(c: &mut Cursor, columns: &mut Vec<usize>) -> Result<Vec<(u32, Operand)>, ParseError> {
    c.word("[")?;
    let mut state = Vec::new();
    loop {
        let t = c.token("`sN=value` or `]`")?;
        if t.text == "]" {
            return Ok(state);
        }
        let Some((slot, value)) = t
            .text
            .strip_prefix('s')
            .and_then(|rest| rest.split_once('='))
        else {
            return Err(c.unexpected(t, "`sN=value` or `]`"));
        };
        let slot_number = number::<u32>(
            c,
            Token {
                text: slot,
                column: t.column + 1,
            },
        )?;
        let value = Token {
            text: value,
            column: t.column + 1 + slot.len() + 1,
        };
        // Validation errors about a state entry point at its start, `sN=`.
        columns.push(t.column);
        state.push((slot_number, operand_token(c, value, Expect::Raw)?));
    }
}

fn operand(
    c: &mut Cursor,
    expect: Expect,
    columns: &mut Vec<usize>,
) -> Result<Operand, ParseError> {
    let what = match expect {
        Expect::Typed(ty) => format!("an operand ({ty})"),
        Expect::Raw => "an operand".to_string(),
    };
    let t = c.token(&what)?;
    columns.push(t.column);
    operand_token(c, t, expect)
}

fn operand_token(c: &Cursor, t: Token, expect: Expect) -> Result<Operand, ParseError> {
    if t.text.starts_with('v') {
        return value_id(c, t).map(Operand::Value);
    }
    constant(t.text, expect)
        .map(Operand::Const)
        .map_err(|what| c.unexpected(t, &what))
}

/// Reads a constant as the text form writes it where `expect` says its type; on error,
/// says what was expected.
pub fn constant(text: &str, expect: Expect) -> Result<u64, String> {
    match expect {
        Expect::Raw => {
            unsigned(text).ok_or_else(|| "a value or an unsigned 64-bit constant".to_string())
        }
        Expect::Typed(ty @ (Type::I32 | Type::I64)) => {
            let (negative, magnitude) = match text.strip_prefix('-') {
                Some(m) => (true, m),
                None => (false, text),
            };
            let bits = ty.bits();
            let what = || format!("a value or an {ty} constant");
            let m = unsigned(magnitude).ok_or_else(what)? as u128;
            let fits = if negative {
                m <= 1 << (bits - 1)
            } else {
                m < 1 << bits
            };
            if !fits {
                return Err(format!("{} (out of range)", what()));
            }
            let v = if negative {
                (m as i128).wrapping_neg() as u128
            } else {
                m
            };
            Ok((v as u64) & (u64::MAX >> (64 - bits)))
        }
        Expect::Typed(ty @ (Type::F32 | Type::F64)) => {
            let what = || format!("a value or an {ty} constant (NaNs as bits: `{ty}:0x...`)");
            if let Some(hex) = text
                .strip_prefix(ty.name())
                .and_then(|r| r.strip_prefix(":0x"))
            {
                let digits = (ty.bits() / 4) as usize;
                if hex.is_empty() || hex.len() > digits {
                    return Err(what());
                }
                return u64::from_str_radix(hex, 16).map_err(|_| what());
            }
            let (x, nan) = if ty == Type::F32 {
                let x: f32 = text.parse().map_err(|_| what())?;
                (x.to_bits() as u64, x.is_nan())
            } else {
                let x: f64 = text.parse().map_err(|_| what())?;
                (x.to_bits(), x.is_nan())
            };
            if nan {
                return Err(what());
            }
            Ok(x)
        }
    }
}

/// An unsigned number in decimal or `0x` hex.
fn unsigned(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|ch| ch.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn number<T: TryFrom<u64>>(c: &Cursor, t: Token) -> Result<T, ParseError> {
    let bits = std::mem::size_of::<T>() * 8;
    unsigned(t.text)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            let found = if t.text.is_empty() {
                "nothing".to_string()
            } else {
                format!("`{}`", t.text)
            };
            c.error(
                t.column,
                format!("expected an unsigned {bits}-bit number, found {found}"),
            )
        })
}
