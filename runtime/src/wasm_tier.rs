//! Trace code run by wasmtime, plugged into the interpreter's tier door.
//!
//! A [`WasmtimeTier`] holds one wasmtime store per running guest instance, with the
//! guest's memory shared in place (`memory.rs`), the frame memory (a view of the
//! interpreter's value stack, in place too), and the guest globals the trace modules
//! import. [`WasmtimeTier::load`] compiles and instantiates a module of trace functions
//! (`emit`'s ABI) and returns the anchors it has code for; the caller attaches them in
//! the interpreter. At each attached anchor the interpreter calls
//! [`TraceTier::run`]: the globals the function's traces touch are set, the trace runs on
//! the interpreter's frame where it is until an exit (iterating its loop inside) and on
//! through whatever trace is linked at the exit's pc (`links.rs`), and the globals are
//! copied back. Neither memory nor frame slots need a copy. A trace that does not pay
//! (probation, below) goes back to the interpreter.
//!
//! Where the chain keeps ending at the same pc, the tier asks the interpreter to record a
//! side trace from there (`TierExit::Record`); with live JIT on, it is compiled and
//! linked at that pc, so the next exit there goes on in trace code.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use emit::abi::{
    FRAME_MEMORY, GUEST_MEMORY, GUEST_MODULE, ITERATION_WORD_BYTES, KILN_MODULE, PAGE_BYTES,
    SLOT_BYTES,
};
use emit::{Arms, Branch, EmitKind, GlobalInfo, GuestInfo, Region, Tree};
use ir::{Trace, Type};
use trace_capture::linear::RESERVED_BYTES;
use trace_capture::record::{Selector, MAX_INLINE_DEPTH};
use trace_capture::value_stack::LEADING_BYTES;
use trace_capture::{
    ControlAt, InstanceId, Module, RecordedTrace, ReportStart, SideTraceRecord, Store, TierExit,
    TraceEntry, TraceReport, TraceStart, TraceTier, TrapKind,
};
use wasmtime::{
    Config, Engine, ExternType, Func, Global, GlobalType, Instance, Memory, MemoryType, Mutability,
    Ref, RefType, Strategy, Table, TableType, Val, ValRaw, ValType,
};

use crate::code_cache::CodeCache;
use crate::compiler::{Compiled, Compiler, JobId};
use crate::links::{self, Links, Place, BAD_EXIT, CALLS, DRIVE_EXPORT, SEGMENTS};

use crate::memory::{SharedMemoryCreator, WASMTIME_GUARD_BYTES};
use crate::trace_code::{self, guest_info, TraceCode, TraceMeta};
use crate::trial::{Step, Trial};

/// Which wasmtime compiler turns trace modules into machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The optimizing compiler.
    Cranelift,
    /// The baseline compiler: fast to compile, slower code.
    Winch,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cranelift => "cranelift",
            Backend::Winch => "winch",
        }
    }
}

/// A handle on a tier's counters ([`WasmtimeTier::stats_handle`]), for reading them while
/// the tier is installed in the interpreter and after.
#[derive(Debug, Clone)]
pub struct TierStatsHandle(Rc<RefCell<TierStats>>);

impl TierStatsHandle {
    /// The counts so far.
    pub fn get(&self) -> TierStats {
        *self.0.borrow()
    }
}

/// Counts of what the tier did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Entries into trace code from the interpreter (each runs a trace and whatever is
    /// linked after it).
    pub entries: u64,
    /// Calls that ended in a guest trap.
    pub traps: u64,
    /// Traces left to the interpreter after probation: they mostly exited in their first
    /// iterations (`PROBATION_CALLS`, `MIN_ITERATIONS_PER_CALL`).
    pub detached: u64,
    /// Calls the tier declined (no code, or the memory could not be synchronized).
    pub declined: u64,
    /// Live JIT: traces compiled during the run, in how many modules (batches), and
    /// traces that could not be compiled (they stay interpreted).
    pub live_traces: u64,
    pub live_modules: u64,
    pub live_failures: u64,
    /// Side traces recorded at hot exits, compiled (a module each) and linked there, and
    /// the recordings asked for (`TierExit::Record`). Not in `live_traces`, which counts
    /// loop traces.
    pub side_traces: u64,
    pub side_requests: u64,
    /// Side traces a cache library held, linked at load.
    pub cached_side_traces: u64,
    /// Modules made from a cache library (the library, trees of its traces) whose code
    /// came from the machine's code cache, and those compiled (and stored there).
    pub code_cache_hits: u64,
    pub code_cache_misses: u64,
    /// Cache libraries read without their whole check, by the code cache's record that
    /// these very bytes passed it before (`cache.rs`).
    pub known_libraries: u64,
    /// Timed trials finished (`trial.rs`), and those the interpreter won: their anchors
    /// went back to it. Not in `detached`, which counts probation's.
    pub trials: u64,
    pub lost_trials: u64,
    /// Trace trees compiled (a root with its side traces inlined, `emit::tree`), the side
    /// traces they inlined in all, and trees that could not be built (their roots run
    /// on, linked to their side traces through the driver).
    pub trees: u64,
    pub tree_sides: u64,
    pub tree_failures: u64,
    /// Regions compiled (the linked traces of a function's loop nest as one function,
    /// `emit::region`), the traces they hold in all, and regions that could not be built
    /// (their traces run on, linked through the driver).
    pub regions: u64,
    pub region_members: u64,
    pub region_failures: u64,
    /// Returns to the interpreter inside calls a trace inlined (`TierExit::ResumeInCalls`).
    pub call_exits: u64,
    /// Exits at calls linked to the callees' entry traces (`Links::link_call`), and drives
    /// that ended inside calls trace code made (the interpreter takes those frames over).
    pub calls_linked: u64,
    pub unwinds: u64,
}

impl TierStats {
    /// Counts one module looked up in the code cache.
    fn code_cache_lookup(&mut self, hit: bool) {
        if hit {
            self.code_cache_hits += 1;
        } else {
            self.code_cache_misses += 1;
        }
    }
}

impl Loaded {
    /// A function's entry trace: a side trace from its pc 0, entered by the driver's calls.
    fn is_entry(&self) -> bool {
        !self.root
            && self
                .side_start
                .as_ref()
                .is_some_and(|(start, _)| start.pc == 0 && start.calls.is_empty())
    }

    /// Grows a tree with the side traces at its exits: a root whose anchor is known, or
    /// an entry trace (`emit::tree`: a tree's root may end in an exit).
    fn grows_tree(&self) -> bool {
        (self.root && self.anchor_pc.is_some()) || self.is_entry()
    }
}

/// A trace function, at its index in `WasmtimeTier::traces` and in the trace table.
struct Loaded {
    /// The guest function it belongs to.
    func_index: u32,
    /// A loop trace (entered at its anchor), not a side trace.
    root: bool,
    /// The highest slot the trace touches (`None`: unknown, whole-frame copies).
    max_slot: Option<u32>,
    /// One past the highest slot it reads at entry (`None`: unknown).
    reads_end: Option<u32>,
    /// The largest exit pc in the anchor's function, checked against its code once.
    max_pc: u32,
    /// The exits inside inlined calls, (pc, calls): checked against the code once.
    exits_in_calls: Vec<(u32, Rc<[ir::InlinedCall]>)>,
    checked: bool,
    /// Calls and loop iterations in the probation window (`PROBATION_CALLS`).
    calls: u32,
    iterations: u64,
    /// A root's timed trial (`trial.rs`): from its `TRIAL_AFTER_CALLS`-th call, alongside
    /// probation, if `needs_trial` says so (else it is over, trace code kept).
    trial: Trial,
    /// The anchor's pass count when the probation window opened (its first call).
    passes_at_first_call: u64,
    /// The trace's IR, kept where a tree may need it: live roots (a tree grows from them)
    /// and side traces (inlined into one). Cached roots have none.
    ir: Option<Rc<Trace>>,
    /// A root's anchor pc, once its first entry told it.
    anchor_pc: Option<u32>,
    /// A root's tree (`emit::tree`), if it has grown one.
    tree: TreeState,
    /// A side trace's place (and the module offset of its first instruction), for the
    /// corpus: where it is linked.
    side_start: Option<(ir::SideStart, u32)>,
    /// Loaded from a cache library: a tree made of such traces only is compiled through
    /// the code cache.
    from_library: bool,
    /// For the profile (`TraceTier::report`): drives started at this trace from the
    /// interpreter, the segments they ran, the hand-overs from trace to trace among them,
    /// and whether its anchor went back to the interpreter.
    entries: u64,
    segments: u64,
    handovers: u64,
    detached: bool,
}

/// Where a root's trace tree stands.
#[derive(Debug, Clone, Default)]
struct TreeState {
    /// A side trace was linked in the root's function since the tree was last built.
    stale: bool,
    /// What the current tree inlines (per branch, its root exit and side trace indices),
    /// to tell a rebuild that would change nothing.
    inlined: Vec<(u32, Vec<u32>)>,
    /// Builds so far, and the earliest time of the next one (`TREE_REBUILD_RATIO`).
    builds: u32,
    next_build: Option<Instant>,
    /// A build failed: the root stays as it is.
    failed: bool,
    /// A build is on the compile thread.
    building: bool,
    /// Reached through links hot enough for a region (`REGION_AFTER_LINKED_PASSES`).
    linked_hot: bool,
    /// The links of the region the root is an entry of (from trace, exit id, to trace),
    /// sorted, to tell a rebuild that would change nothing; empty if none.
    region: Vec<(u32, u32, u32)>,
}

/// Trace code on the compile thread, and what to do with it once compiled.
enum InFlight {
    /// A side trace, to link at slot `k` (at `selector`'s arm, for a `br_table`'s);
    /// `func_index` is its function's.
    Side {
        k: u32,
        code: TraceCode,
        selector: Option<Selector>,
        func_index: u32,
    },
    /// Root `at`'s tree, inlining `inlined`, entered at link slot `entry`; looked up in
    /// the code cache if `looked_up`.
    Tree {
        at: usize,
        code: TraceCode,
        inlined: Vec<(u32, Vec<u32>)>,
        entry: Option<u32>,
        looked_up: bool,
    },
    /// A region of `members` traces with an entry for each of `roots`; looked up in the
    /// code cache if `looked_up`.
    Region {
        roots: Vec<usize>,
        code: TraceCode,
        members: usize,
        looked_up: bool,
    },
}

/// Entries of a trace observed before deciding whether it pays. An entry costs a fixed
/// amount (suspending the interpreter, frame and globals in and out, the call itself:
/// tens of nanoseconds) and saves a little per segment it runs (a loop iteration, or a
/// linked trace the chain went on in); a trace that mostly exits at once (a dispatch
/// loop whose path changes each time, before side traces cover the paths) only costs. A
/// thousand entries is a blink for a hot loop and enough to see the pattern. Linking a
/// side trace into a function starts its traces' probation again.
const PROBATION_CALLS: u32 = 1000;
/// Mean segments per entry, beyond the entry's own call, below which a trace is
/// detached and its loop left to the interpreter. On the examples an entry's fixed cost
/// is about what three iterations of interpretation cost (`kiln run --jit live --stats`
/// against `--jit off`), so a trace must average more than that to win.
const MIN_ITERATIONS_PER_CALL: u64 = 4;
/// Calls of a root before its timed trial (`trial.rs`) starts: past its first calls, whose
/// exits may still be asking for side traces (each linked one starts the trial over).
/// Probation goes on meanwhile; a trace it detaches needs no trial.
const TRIAL_AFTER_CALLS: u32 = 16;
/// Mean anchor passes per drive from which a root that loops in itself needs no trial
/// (`needs_trial`): the entry's cost, a few interpreted iterations' worth, is repaid many
/// times over.
const LONG_DRIVE_PASSES: u64 = 64;
/// Exits to the interpreter at one pc before the tier asks for a side trace there.
/// LuaJIT waits for 10 (`hotexit`); a kiln side trace costs a wasmtime compile of its
/// own (about a millisecond), so the exit must be hot enough to repay it.
const SIDE_EXIT_HOT: u32 = 64;
/// Side-trace recordings at one pc that may fail (abort, or a pc that cannot start one)
/// before the tier stops asking there.
const MAX_SIDE_FAILURES: u32 = 2;
/// Side traces one `br_table` pc may get, one per arm: a bytecode interpreter's dispatch
/// has a few dozen opcodes; past this the rare ones stay interpreted.
const MAX_SIDE_TRACES_PER_PC: u32 = 64;

/// A tree is rebuilt (to inline side traces linked since the last build) only once this
/// many times the last build's compile time has passed since, so rebuilding takes at most
/// a quarter of the time while side traces keep coming (a dispatch loop's arms appear one
/// by one, each after `SIDE_EXIT_HOT` misses). Builds take 1.5 to 17 ms on bytecode_vm;
/// ratios of 1 and 3 measured the same there (`kiln bench --tiers --runs 5 bytecode_vm
/// sort`), 10 left most of its run to the driver before the tree was complete.
const TREE_REBUILD_RATIO: u32 = 3;
/// Segments after which a drive returns to the host while some tree is stale
/// (`links::YIELD_AFTER`), so a root that runs on through the driver for a long time gets
/// its tree rebuilt: a segment through the driver costs tens of nanoseconds, so this is
/// a millisecond or so, a few times a tree's compile time; the interpreter resumes at the
/// exit's pc and soon enters trace code again.
const TREE_YIELD_SEGMENTS: u64 = 32_768;
/// Builds of one root's tree: with the ratio above, later ones are rare anyway; this
/// bounds a root whose exits keep getting side traces.
const MAX_TREE_BUILDS: u32 = 8;
/// IR instructions of side traces one tree may inline (over its root's): a tree's compile
/// time grows with its size, and `trace_capture`'s traces are at most a few thousand
/// instructions each. Past it, side traces stay linked through the driver.
const MAX_TREE_SIDE_INSTS: usize = 8000;
/// Instructions a region's members may hold in all, for the same reason; and members, a
/// loop nest's traces and their side traces (the dispatch `br_table` has a label each).
const MAX_REGION_INSTS: usize = 8000;
const MAX_REGION_MEMBERS: usize = 16;
/// Entries from the interpreter a root waits for before it grows a region. Building one
/// (emitting, validating and hashing a large module, even when its code is in the code
/// cache) costs about a millisecond, and while a loop nest's roots are first entered one
/// after the other each would rebuild it; by this many entries the nest has settled, and
/// a root entered fewer times has little to gain.
const REGION_AFTER_ENTRIES: u64 = 64;
/// Once calls are linked, a root may be reached through links far more often than from
/// the interpreter (a recursive function's loops, entered by the driver's calls): every
/// this many host entries the tier looks for cached roots entered fewer than
/// `REGION_AFTER_ENTRIES` times whose passes (`Links::passes`, every call however made)
/// reached `REGION_AFTER_LINKED_PASSES`, and grows their regions as if their hand-overs
/// were dense, which links between short segments are.
const REGION_SCAN_ENTRIES: u64 = 64;
const REGION_AFTER_LINKED_PASSES: u64 = REGION_AFTER_ENTRIES * REGION_MAX_SEGMENTS_PER_HANDOVER;
/// The most segments per entry (loop iterations and linked calls, `Loaded::segments`) a
/// root's drives may average for it to grow a region. A region saves the driver's work
/// at each hand-over between traces; drives of thousands of segments are loop iterations
/// mostly, which it does not speed up, and a loop compiled inside a region's one large
/// function ran slower than in its own tree (`examples/sieve.wasm`, 50 849 segments per
/// entry at its root: 1.08x to 1.38x slower with a region; sort's roots, 58 to 139: 0.57x
/// to 0.62x).
const REGION_MAX_SEGMENTS_PER_ENTRY: u64 = 4096;
/// A root with longer drives still grows a region when its hand-overs from trace to trace
/// (the driver's calls after the first) are at least one segment in this many: then the
/// driver's work per hand-over outweighs what its loops may lose in the region. Measured
/// per root at its 64th entry: lz77's outer loop, 8,392 segments and 815 hand-overs per
/// entry (10 segments a hand-over), grows a second region with it and took 0.879 of the
/// time (A/B, 7 runs; 0.866 with a region for every root, a build not committed); sieve's
/// roots, 23 and 204 segments a hand-over, stay trees (with regions for every root, sieve
/// took 1.047 of the time). No other example builds another region for it (`kiln run
/// --cache --stats`).
const REGION_MAX_SEGMENTS_PER_HANDOVER: u64 = 16;
/// Set to `off` to build trace trees only, never regions (for measuring one against the
/// other).
pub const REGIONS_ENV: &str = "KILN_REGIONS";

/// `off` in the environment when the tier is made: exits at calls are not linked to the
/// callees' entry traces (trace code makes no calls; what A/B comparisons of calls need).
pub const CALLS_ENV: &str = "KILN_CALLS";

/// Set (to anything) in the environment, the tier writes wasmtime's perf map
/// (/tmp/perf-PID.map), so `perf report` names trace functions instead of addresses.
pub const PERF_MAP_ENV: &str = "KILN_PERF_MAP";

/// What the traces of one guest function touch, together.
#[derive(Default)]
struct Group {
    /// The mutable guest globals some trace touches, with their types.
    globals: Vec<(u32, Global, Type)>,
    /// The stack some trace needs above the anchor's frame base, in slots (its slots, and
    /// the frames of the calls its exits leave inside), and the most inlined calls an exit
    /// leaves inside: an entry with less room is declined, for the interpreter would have
    /// trapped making those calls.
    stack_need: usize,
    calls_need: usize,
    /// Side traces and trees of the function on the compile thread: while there are any,
    /// probation waits (the exits they are for still come back to the host).
    compiling: u32,
}

/// The side traces a tree inlines: per root exit id, the trace indices inlined there (one,
/// or one per `br_table` arm).
type InlinedSides = Vec<(u32, Vec<u32>)>;

/// `WasmtimeTier::by_anchor`: not looked up yet.
const UNRESOLVED: u32 = u32::MAX;
/// `WasmtimeTier::by_anchor`: looked up, no code.
const NO_CODE: u32 = u32::MAX - 1;

/// Trace code in wasmtime for one guest instance.
pub struct WasmtimeTier {
    backend: Backend,
    engine: Engine,
    store: wasmtime::Store<()>,
    guest_memory: Option<Memory>,
    frame: Memory,
    /// Guest globals imported by some loaded module, by guest index, with their types.
    globals: BTreeMap<u32, (Global, GlobalInfo)>,
    guest: GuestInfo,
    /// The guest functions' frame sizes (module index space; 0 for imports), and the
    /// largest.
    frame_sizes: Vec<u32>,
    max_frame: usize,
    /// Each guest global's value when the tier was made: an immutable global's forever.
    initial_globals: BTreeMap<u32, u64>,
    /// Loaded trace functions, found by anchor key once, then by anchor id: the anchor
    /// id indexes `by_anchor`, which holds an index into `traces` (or `UNRESOLVED`,
    /// `NO_CODE`). A call then costs no hashing.
    traces: Vec<Loaded>,
    by_key: HashMap<(u32, u32), usize>,
    /// Every trace function, at its index in `traces`, for the driver's `call_indirect`.
    table: Table,
    /// The driver (`links.rs`): `(frame, trace) -> link slot`.
    drive: Func,
    links_memory: Memory,
    /// Where the links memory's bytes are, for the same reason as `frame_ptr`: the drive's
    /// segment count is read from it after every drive. Refreshed when it grows.
    links_ptr: *mut u8,
    links: Links,
    /// Per guest function, what its traces touch together: a drive may run any of them.
    /// Indexed by function index (a vector, not a map: looked up at every drive).
    groups: Vec<Group>,
    by_anchor: Vec<u32>,
    /// The guest memory's length wasmtime was last brought up to.
    synced_len: usize,
    /// The frame memory's size in bytes, and where its bytes are (the interpreter's value
    /// stack, `Store::value_stack_bytes`: they never move). Read through the pointer, not
    /// wasmtime's accessor, which walks the store (a tenth of the host's time per drive in
    /// a profile of hashtable).
    frame_len: usize,
    frame_ptr: *mut u8,
    /// Live JIT: on, and the traces recorded but not compiled yet, by anchor key.
    live: bool,
    pending: Vec<(Trace, u32, u32)>,
    /// Counted in place: copying all of them in and out on every entry was 4.5% of
    /// hashtable's time (`perf record`, 2 million entries).
    stats: Rc<RefCell<TierStats>>,
    /// Time spent compiling and instantiating trace modules and recording side traces,
    /// which trials leave out; and when the side-trace recording under way began.
    uncharged: Duration,
    recording_since: Option<Instant>,
    /// The link slot whose side-trace recording is under way (`TierExit::Record`).
    side_request: Option<u32>,
    /// The trace whose timed trial is under way (one at a time, `trial.rs`).
    trial_owner: Option<usize>,
    /// Roots whose trees are stale (`TreeState::stale`), checked at each return to the
    /// host until rebuilt.
    stale_trees: Vec<usize>,
    /// What the links memory's `YIELD_AFTER` says.
    yield_after: u64,
    /// Whether side traces, trees and regions compile on a thread of their own; the
    /// thread, once the first of them is submitted (`None` before, or when they compile
    /// on this one); and what is on it.
    background: bool,
    compiler: Option<Compiler>,
    in_flight: HashMap<JobId, InFlight>,
    /// Where code made from a cache library is kept between runs (`code_cache.rs`).
    code_cache: Option<CodeCache>,
    /// Run for a recording (`WasmtimeTier::for_recording`): no timed trials, no trees.
    for_recording: bool,
    /// Regions are built where a root's links reach another loop (`REGIONS_ENV`).
    regions: bool,
    /// `TREE_REBUILD_RATIO`, or 0 (`rebuild_trees_at_once`).
    rebuild_ratio: u32,
    /// The guest module: where exits land, for linking calls and returns.
    module: Module,
    /// What all traces touch together: once a call is linked, a drive may run traces of
    /// any function, so it sets and reads every global some trace touches.
    all: Group,
    /// Exits linked as calls (`Links::link_call`).
    calls_linked: u32,
    /// Exits at calls are linked to the callees' entry traces (`CALLS_ENV`).
    link_calls: bool,
}

// The frame memory is the interpreter's value stack: a frame at stack slot `i` is at byte
// `LEADING_BYTES + 8 * i`, and the iteration word trace code writes just below it
// (`emit::abi::ITERATION_WORD_BYTES`) falls on the stack's leading word or on slot `i - 1`,
// which a drive saves and restores (`drive`).
const _: () = assert!(LEADING_BYTES >= ITERATION_WORD_BYTES as usize);
const _: () = assert!(SLOT_BYTES as usize == std::mem::size_of::<u64>());

/// Exit ids a trace may have: ids index a vector, so a corrupt id must not allocate
/// gigabytes. Recorded traces number their exits from 0 and stop at
/// `trace_capture::record::MAX_TRACE_INSTS` instructions, far below this.
const MAX_EXITS: usize = 1 << 16;

/// Functions a guest module may have (the limit the web's JS API sets, which wasmparser
/// enforces too): bounds the per-function group table against a corrupt trace key.
const MAX_FUNCTIONS: usize = 1_000_000;

impl WasmtimeTier {
    /// A tier for `instance` of `module` in the interpreter store `interp`, with no code
    /// cache: everything it runs is compiled in this run.
    ///
    /// The tier must be installed in that same store (`Store::set_tier`): it views the
    /// store's memory in place, and the store owns it from then on.
    pub fn new(
        backend: Backend,
        interp: &Store,
        instance: InstanceId,
        module: &Module,
    ) -> anyhow::Result<WasmtimeTier> {
        Self::with_code_cache(backend, interp, instance, module, None)
    }

    /// [`WasmtimeTier::new`] with the machine's code cache (`code_cache.rs`). It keeps,
    /// between runs, the tier's own modules (the driver, and the ones that define the
    /// guest's memory and the frame memory for wasmtime: compiling them is most of a
    /// tier's set-up, about 2 ms of Cranelift, while a short program's whole run is 20 ms)
    /// and the code made from a cache library ([`WasmtimeTier::load_library`]) with the
    /// trees grown from it. Trace code the live JIT compiles is never kept: live JIT stays
    /// live.
    pub fn with_code_cache(
        backend: Backend,
        interp: &Store,
        instance: InstanceId,
        module: &Module,
        code_cache: Option<CodeCache>,
    ) -> anyhow::Result<WasmtimeTier> {
        let creator = Arc::new(SharedMemoryCreator::default());
        let mut config = Config::new();
        config
            .strategy(match backend {
                Backend::Cranelift => Strategy::Cranelift,
                Backend::Winch => Strategy::Winch,
            })
            .wasm_multi_memory(true)
            .memory_reservation(RESERVED_BYTES as u64)
            .memory_guard_size(WASMTIME_GUARD_BYTES as u64)
            .memory_may_move(false)
            .with_host_memory(creator.clone())
            // A cache library's functions compile on every core: the interpreter waits
            // for it at load. (Side traces and trees are one function each, on the
            // compile thread.)
            .parallel_compilation(true);
        if std::env::var_os(PERF_MAP_ENV).is_some() {
            // For `perf report`: names trace code in /tmp/perf-PID.map.
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = wt(Engine::new(&config))?;
        let mut store = wasmtime::Store::new(&engine, ());
        let guest = guest_info(module);
        let frame_sizes: Vec<u32> = (0..module.func_count())
            .map(|f| module.frame_size(f).unwrap_or(0))
            .collect();
        let max_frame = frame_sizes.iter().copied().max().unwrap_or(0) as usize;
        let initial_globals = guest
            .globals
            .keys()
            .filter_map(|&g| Some((g, interp.instance_global(instance, g)?)))
            .collect();
        let guest_memory = match interp.instance_memory(instance) {
            Some(bytes) => {
                let pages = (bytes.len() as u64 / PAGE_BYTES) as u32;
                // Wasmtime makes memories with the engine's memory creator only for
                // modules it instantiates (`Memory::new` ignores it), so the guest's memory
                // is defined by a one-line module and exported from there.
                let definer = wt(crate::compiler::compile(
                    &engine,
                    &memory_module(pages, guest.memory_max_pages),
                    code_cache.as_ref(),
                ))?
                .0;
                // SAFETY: the interpreter store owns these bytes and the tier (which owns
                // this wasmtime store); its memories are dropped only with it.
                unsafe { creator.bind_next(bytes) };
                let instance = wt(Instance::new(&mut store, &definer, &[]))?;
                let memory = instance
                    .get_memory(&mut store, "memory")
                    .ok_or_else(|| anyhow::anyhow!("the memory module exports no memory"))?;
                if memory.data_ptr(&store) != bytes.base() {
                    anyhow::bail!("wasmtime did not place the guest memory over the interpreter's");
                }
                Some(memory)
            }
            // Trace modules import a guest memory whatever the guest has (its index is
            // the ABI's); a guest without one has no instruction that touches it, so an
            // empty one that cannot grow stands in.
            None => {
                let definer = wt(crate::compiler::compile(
                    &engine,
                    &memory_module(0, Some(0)),
                    code_cache.as_ref(),
                ))?
                .0;
                let instance = wt(Instance::new(&mut store, &definer, &[]))?;
                Some(
                    instance
                        .get_memory(&mut store, "memory")
                        .ok_or_else(|| anyhow::anyhow!("the memory module exports no memory"))?,
                )
            }
        };
        // The frame memory is a view of the interpreter's value stack, defined like the
        // guest's memory by a one-line module; it never grows.
        let stack = interp.value_stack_bytes().ok_or_else(|| {
            anyhow::anyhow!(
                "the interpreter's value stack cannot be shared with trace code (no address \
                 space could be reserved for it, or a call running in the store holds it)"
            )
        })?;
        let stack_pages = u32::try_from(stack.len() as u64 / PAGE_BYTES)
            .map_err(|_| anyhow::anyhow!("the value stack is larger than a 32-bit memory"))?;
        let definer = wt(crate::compiler::compile(
            &engine,
            &memory_module(stack_pages, Some(stack_pages)),
            code_cache.as_ref(),
        ))?
        .0;
        // SAFETY: the interpreter store owns the stack and the tier (which owns this
        // wasmtime store); the stack is dropped only with the store.
        unsafe { creator.bind_next(stack) };
        let frame = wt(Instance::new(&mut store, &definer, &[]))?
            .get_memory(&mut store, "memory")
            .ok_or_else(|| anyhow::anyhow!("the memory module exports no memory"))?;
        let frame_ptr = frame.data_ptr(&store);
        if frame_ptr != stack.base() {
            anyhow::bail!("wasmtime did not place the frame memory over the interpreter's stack");
        }
        let frame_len = frame.data_size(&store);
        let links = Links::new();
        let links_memory = wt(Memory::new(
            &mut store,
            MemoryType::new(links.pages_needed() as u32, None),
        ))?;
        let links_ptr = links_memory.data_ptr(&store);
        let table = wt(Table::new(
            &mut store,
            TableType::new(RefType::FUNCREF, 0, None),
            Ref::Func(None),
        ))?;
        let driver = wt(crate::compiler::compile(
            &engine,
            &links::driver_module(),
            code_cache.as_ref(),
        ))?
        .0;
        let driver = wt(Instance::new(
            &mut store,
            &driver,
            &[frame.into(), links_memory.into(), table.into()],
        ))?;
        let drive = *wt(driver.get_typed_func::<(i32, i32), i32>(&mut store, DRIVE_EXPORT))?.func();
        Ok(WasmtimeTier {
            backend,
            engine,
            store,
            guest_memory,
            frame,
            globals: BTreeMap::new(),
            guest,
            frame_sizes,
            max_frame,
            initial_globals,
            traces: Vec::new(),
            by_key: HashMap::new(),
            table,
            drive,
            links_memory,
            links_ptr,
            links,
            groups: Vec::new(),
            by_anchor: Vec::new(),
            synced_len: 0,
            frame_len,
            frame_ptr,
            live: false,
            pending: Vec::new(),
            stats: Rc::default(),
            uncharged: Duration::ZERO,
            recording_since: None,
            side_request: None,
            trial_owner: None,
            stale_trees: Vec::new(),
            background: true,
            compiler: None,
            in_flight: HashMap::new(),
            code_cache,
            for_recording: false,
            regions: std::env::var(REGIONS_ENV).map_or(true, |v| v != "off"),
            rebuild_ratio: TREE_REBUILD_RATIO,
            yield_after: u64::MAX,
            module: module.clone(),
            all: Group::default(),
            calls_linked: 0,
            link_calls: std::env::var(CALLS_ENV).map_or(true, |v| v != "off"),
        })
    }

    /// Turns on live JIT: traces the interpreter records during the run are emitted 1:1
    /// (naive) and compiled, so their anchors run as trace code from then on.
    ///
    /// Compiling has a fixed cost per module, so traces are compiled in batches: every
    /// trace recorded since the last compile goes into one module when the first of them
    /// is next entered.
    pub fn enable_live_jit(&mut self) {
        self.live = true;
    }

    /// Whether exits at calls are linked to the callees' entry traces, so that the driver
    /// makes the calls itself (`links.rs`); on unless `KILN_CALLS=off` (`CALLS_ENV`) when
    /// the tier was made. Off, trace code makes no calls: every call it reaches is an exit.
    pub fn link_calls(&mut self, on: bool) {
        self.link_calls = on;
    }

    /// Whether roots whose links reach another loop grow regions (`emit::region`); on
    /// unless `KILN_REGIONS=off` (`REGIONS_ENV`) when the tier was made.
    pub fn build_regions(&mut self, on: bool) {
        self.regions = on;
    }

    /// Rebuilds a stale tree or region at the next turn, not after `TREE_REBUILD_RATIO`
    /// times its last build's compile time: what a test of what a tree ends up inlining
    /// needs on a loaded machine, where a compile may take longer than the whole run.
    pub fn rebuild_trees_at_once(&mut self) {
        self.rebuild_ratio = 0;
    }

    /// Whether side traces, trees and regions compile on a thread of their own (the default,
    /// `compiler.rs`) or on the interpreter's, linked as soon as recorded (what a test
    /// counting links within a short run needs). Turning it off first installs what is
    /// on the thread.
    pub fn compile_in_background(&mut self, on: bool) {
        self.background = on;
        if !on {
            while !self.in_flight.is_empty() {
                let Some(done) = self.compiler.as_ref().and_then(Compiler::wait) else {
                    break;
                };
                self.install(done);
            }
            // Work the thread never finished (it is gone): its slots and trees may ask again.
            for (_, work) in std::mem::take(&mut self.in_flight) {
                match work {
                    InFlight::Side { k, func_index, .. } => {
                        self.links.slots[k as usize].pending = false;
                        self.group_mut(func_index).compiling = 0;
                    }
                    InFlight::Tree { at, .. } => {
                        self.traces[at].tree.building = false;
                        let f = self.traces[at].func_index;
                        self.group_mut(f).compiling = 0;
                    }
                    InFlight::Region { roots, .. } => {
                        for &r in &roots {
                            self.traces[r].tree.building = false;
                            self.traces[r].tree.region.clear();
                        }
                        let f = self.traces[roots[0]].func_index;
                        self.group_mut(f).compiling = 0;
                    }
                }
            }
            self.compiler = None;
        }
    }

    /// The compile thread, started with the first job it is given: a run whose trace code
    /// all comes from the code cache never starts one. `None` when compiles happen on
    /// this thread (asked for, or a thread that could not start).
    fn compiler(&mut self) -> Option<&mut Compiler> {
        if self.background && self.compiler.is_none() {
            self.compiler = Compiler::start(&self.engine).ok();
            self.background = self.compiler.is_some();
        }
        self.compiler.as_mut()
    }

    /// Installs the side traces, trees and regions the compile thread has finished.
    fn install_compiled(&mut self) {
        let Some(compiler) = &self.compiler else {
            return;
        };
        for done in compiler.finished() {
            self.install(done);
        }
    }

    /// Starts probation and the timed trial of function `func_index`'s roots again: what
    /// they do per entry is changing (a side trace linked in their function, or coming).
    fn judge_afresh(&mut self, func_index: u32) {
        for (i, t) in self.traces.iter_mut().enumerate() {
            if t.func_index == func_index && t.root {
                t.calls = 0;
                t.iterations = 0;
                t.trial = Trial::new();
                if self.trial_owner == Some(i) {
                    self.trial_owner = None;
                }
            }
        }
    }

    /// Function `func_index`'s group, made on first use.
    fn group_mut(&mut self, func_index: u32) -> &mut Group {
        let f = func_index as usize;
        if self.groups.len() <= f {
            self.groups.resize_with(f + 1, Group::default);
        }
        &mut self.groups[f]
    }

    /// Instantiates and links one module from the compile thread.
    fn install(&mut self, done: Compiled) {
        let Some(work) = self.in_flight.remove(&done.id) else {
            return;
        };
        let started = Instant::now();
        if let InFlight::Tree {
            looked_up: true, ..
        }
        | InFlight::Region {
            looked_up: true, ..
        } = work
        {
            self.bump(|s| s.code_cache_lookup(done.cache_hit));
        }
        let (code, module) = match &work {
            InFlight::Side { code, .. }
            | InFlight::Tree { code, .. }
            | InFlight::Region { code, .. } => (code, done.module),
        };
        let funcs = module
            .map_err(|e| anyhow::anyhow!(e))
            .and_then(|m| self.instantiate_module(&m, code));
        self.uncharged += started.elapsed();
        let func_index = match &work {
            InFlight::Side { func_index, .. } => *func_index,
            InFlight::Tree { at, .. } => self.traces[*at].func_index,
            InFlight::Region { roots, .. } => self.traces[roots[0]].func_index,
        };
        let group = self.group_mut(func_index);
        group.compiling = group.compiling.saturating_sub(1);
        match work {
            InFlight::Side {
                k,
                code,
                selector,
                func_index,
            } => {
                self.links.slots[k as usize].pending = false;
                if !self.finish_side_trace(k, &code, funcs, selector, func_index) {
                    self.links.slots[k as usize].failures += 1;
                }
            }
            InFlight::Tree {
                at,
                code,
                inlined,
                entry,
                ..
            } => self.finish_tree(at, &code, funcs, inlined, entry, done.took),
            InFlight::Region {
                roots,
                code,
                members,
                ..
            } => self.finish_region(&roots, &code, funcs, members, done.took),
        }
    }

    /// Compiles every pending trace (one module; one module per trace if the batch
    /// fails, so one bad trace does not keep the others interpreted).
    fn compile_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let batch: Vec<_> = pending
            .iter()
            .map(|(t, f, a)| (t, *f, *a, EmitKind::Naive))
            .collect();
        let built = TraceCode::build(&self.guest, &batch)
            .map_err(anyhow::Error::from)
            .and_then(|code| self.load(&code));
        match built {
            Ok(keys) => self.bump(|s| {
                s.live_modules += 1;
                s.live_traces += keys.len() as u64;
            }),
            Err(_) if batch.len() > 1 => {
                for one in &batch {
                    let built = TraceCode::build(&self.guest, std::slice::from_ref(one))
                        .map_err(anyhow::Error::from)
                        .and_then(|code| self.load(&code));
                    match built {
                        Ok(_) => self.bump(|s| {
                            s.live_modules += 1;
                            s.live_traces += 1;
                        }),
                        Err(_) => self.bump(|s| s.live_failures += 1),
                    }
                }
            }
            Err(_) => self.bump(|s| s.live_failures += 1),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What the guest looks like to emitted code.
    pub fn guest(&self) -> &GuestInfo {
        &self.guest
    }

    /// A handle on the tier's counters that stays valid after the tier is installed.
    pub fn stats_handle(&self) -> TierStatsHandle {
        TierStatsHandle(self.stats.clone())
    }

    /// Compiles and instantiates `code`; returns the anchor keys it now has code for.
    pub fn load(&mut self, code: &TraceCode) -> anyhow::Result<Vec<(u32, u32)>> {
        self.load_with(code, false)
    }

    /// [`WasmtimeTier::load`] for the code of a cache library: compiled through the
    /// machine's code cache, if the tier has one ([`WasmtimeTier::with_code_cache`]), and
    /// so are the trees its traces grow into.
    pub fn load_library(&mut self, code: &TraceCode) -> anyhow::Result<Vec<(u32, u32)>> {
        self.load_with(code, true)
    }

    /// The machine's code cache the tier was made with.
    pub(crate) fn code_cache(&self) -> Option<&CodeCache> {
        self.code_cache.as_ref()
    }

    /// Counts a cache library loaded without its whole check (`cache.rs`).
    pub(crate) fn count_known_library(&self) {
        self.bump(|s| s.known_libraries += 1);
    }

    /// Makes the tier's decisions depend on counts alone, so that a recording run (`kiln
    /// record`) links the same side traces, with the same pass counts, every time: what
    /// it compiles is linked at once (no compile thread), and the timing-driven parts are
    /// off (timed trials, and trees, whose rebuilds wait on compile times). Probation and
    /// side-trace requests count exits and drives, as ever.
    pub fn for_recording(&mut self) {
        self.for_recording = true;
        self.compile_in_background(false);
    }

    fn load_with(
        &mut self,
        code: &TraceCode,
        from_library: bool,
    ) -> anyhow::Result<Vec<(u32, u32)>> {
        let funcs = self.instantiate_with(code, from_library)?;
        let first = self.traces.len();
        let mut keys = Vec::new();
        for (i, (meta, func)) in code.traces.iter().zip(funcs).enumerate() {
            if let Some(start) = &meta.side {
                self.load_side_trace(meta, start, func)
                    .map_err(|e| e.context(format!("trace {i}")))?;
                continue;
            }
            let key = (meta.func_index, meta.anchor_offset);
            let at = self.by_key.get(&key).copied().unwrap_or(self.traces.len());
            self.add_function(at, meta, func, true, None)?;
            // A root replacing one at its index (`at < first`) is not covered below.
            self.traces[at].from_library = from_library;
            self.by_key.insert(key, at);
            keys.push(key);
        }
        for (i, t) in self.traces.iter_mut().enumerate().skip(first) {
            t.from_library = from_library;
            // An entry trace grows its tree with the side traces loaded with it (the
            // interpreter never enters one, so no first entry would).
            if t.is_entry() && t.ir.is_some() && !t.tree.stale && !self.for_recording {
                t.tree.stale = true;
                self.stale_trees.push(i);
            }
        }
        // Anchors looked up before may have code now.
        self.by_anchor.clear();
        Ok(keys)
    }

    /// Links side trace `func` (described by `meta`) at `start`, as if it had been
    /// recorded there in this run. A place (or `br_table` arm) that has code already is
    /// an error: a cache library holds one side trace per place.
    fn load_side_trace(
        &mut self,
        meta: &TraceMeta,
        start: &ir::SideStart,
        func: Func,
    ) -> anyhow::Result<()> {
        let k = self
            .links
            .slot(Place::of_side(start))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !self.side_trace_fits(k, start.selector) {
            anyhow::bail!(
                "its place (function {}, pc {}{}) has code already",
                start.func_index,
                start.pc,
                start
                    .selector
                    .map_or(String::new(), |s| format!(", br_table arm {}", s.arm))
            );
        }
        let at = self.traces.len();
        self.add_function(at, meta, func, false, Some(k))?;
        if !self.link_side_trace(k, at, start.selector, meta.anchor_offset) {
            anyhow::bail!("a side trace's br_table arm does not fit the table linked there");
        }
        self.bump(|s| s.cached_side_traces += 1);
        Ok(())
    }

    /// Links side trace `at` (its first instruction at module offset `offset`) at slot
    /// `k`, for `selector`'s arm if it starts at a `br_table`, and remembers where, for
    /// the corpus. `false` if the slot (or arm) has code already.
    fn link_side_trace(
        &mut self,
        k: u32,
        at: usize,
        selector: Option<Selector>,
        offset: u32,
    ) -> bool {
        let linked = match selector {
            Some(sel) => self
                .links
                .link_arm(k, sel.index_slot, sel.arms, sel.arm, at as u32),
            None => {
                self.links.link(k, at as u32);
                true
            }
        };
        if !linked {
            return false;
        }
        let slot = &mut self.links.slots[k as usize];
        slot.side_traces += 1;
        let start = ir::SideStart {
            func_index: slot.place.func_index,
            pc: slot.place.pc,
            calls: slot.place.calls.as_deref().unwrap_or_default().to_vec(),
            expect: slot.place.expect,
            selector,
        };
        self.traces[at].side_start = Some((start, offset));
        true
    }

    /// The side traces this run recorded and linked, with where (for `kiln run
    /// --record-traces`). Not a cache library's: those came from a corpus already, and
    /// what the library ships may be the optimized candidate, not the recording.
    fn linked_side_traces(&self) -> Vec<SideTraceRecord> {
        let links_memory = self.links_memory.data(&self.store);
        self.traces
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.from_library)
            .filter_map(|(at, t)| {
                let (start, offset) = t.side_start.clone()?;
                Some(SideTraceRecord {
                    trace: (**t.ir.as_ref()?).clone(),
                    start,
                    offset,
                    passes: Links::passes(links_memory, at as u32),
                })
            })
            .collect()
    }

    /// Compiles and instantiates `code`; returns its trace functions, in order.
    fn instantiate(&mut self, code: &TraceCode) -> anyhow::Result<Vec<Func>> {
        self.instantiate_with(code, false)
    }

    /// [`WasmtimeTier::instantiate`], through the code cache if `from_library` (code
    /// made from a cache library's traces only).
    fn instantiate_with(
        &mut self,
        code: &TraceCode,
        from_library: bool,
    ) -> anyhow::Result<Vec<Func>> {
        let started = Instant::now();
        let code_cache = self.code_cache_for(from_library);
        let compiled = crate::compiler::compile(&self.engine, &code.module, code_cache.as_ref());
        let funcs = wt(compiled).and_then(|(module, hit)| {
            if code_cache.is_some() {
                self.bump(|s| s.code_cache_lookup(hit));
            }
            self.instantiate_module(&module, code)
        });
        self.uncharged += started.elapsed();
        funcs
    }

    /// The code cache, for a module made from a cache library's traces only.
    fn code_cache_for(&self, from_library: bool) -> Option<CodeCache> {
        self.code_cache.clone().filter(|_| from_library)
    }

    /// Instantiates `module`, compiled from `code`; returns its trace functions, in order.
    fn instantiate_module(
        &mut self,
        module: &wasmtime::Module,
        code: &TraceCode,
    ) -> anyhow::Result<Vec<Func>> {
        let mut imports = Vec::new();
        for import in module.imports() {
            let ext = match (import.module(), import.name(), import.ty()) {
                (GUEST_MODULE, GUEST_MEMORY, ExternType::Memory(_)) => self
                    .guest_memory
                    .ok_or_else(|| {
                        anyhow::anyhow!("the trace module imports a memory the guest lacks")
                    })?
                    .into(),
                (KILN_MODULE, FRAME_MEMORY, ExternType::Memory(ty)) => {
                    // The module asks for a frame memory big enough for its largest slot;
                    // the stack it views does not grow.
                    let want = ty.minimum() as usize * PAGE_BYTES as usize;
                    if want > self.frame_len {
                        anyhow::bail!(
                            "the trace module needs a frame memory of {want} bytes; the \
                             interpreter's value stack has {}",
                            self.frame_len
                        );
                    }
                    self.frame.into()
                }
                (GUEST_MODULE, name, ExternType::Global(_)) => {
                    let index: u32 = name
                        .strip_prefix("global")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| anyhow::anyhow!("unexpected import guest.{name}"))?;
                    self.global(index)?.into()
                }
                (m, n, _) => anyhow::bail!("unexpected import {m}.{n}"),
            };
            imports.push(ext);
        }
        let instance = wt(Instance::new(&mut self.store, module, &imports))?;
        (0..code.traces.len())
            .map(|i| {
                let name = emit::abi::trace_export_name(i as u32);
                Ok(*wt(instance.get_typed_func::<i32, i32>(&mut self.store, &name))?.func())
            })
            .collect()
    }

    /// Makes `func`, the trace `meta` describes, trace `at` (replacing what was there, or
    /// appended): in `traces`, in the trace table, its exits in the links memory (`entry`:
    /// the link slot it is entered at, if known), and what it touches in its function's
    /// group.
    fn add_function(
        &mut self,
        at: usize,
        meta: &TraceMeta,
        func: Func,
        root: bool,
        entry: Option<u32>,
    ) -> anyhow::Result<()> {
        if meta.func_index as usize >= MAX_FUNCTIONS {
            anyhow::bail!(
                "a trace is keyed to function {}, beyond the {MAX_FUNCTIONS} a module may have",
                meta.func_index
            );
        }
        let exit_count = meta.exits.keys().max().map_or(0, |&m| m as usize + 1);
        if exit_count > MAX_EXITS {
            anyhow::bail!(
                "a trace has exit id {}, more than kiln handles",
                exit_count - 1
            );
        }
        let mut exit_slots = vec![None; exit_count];
        for (&id, &pc) in &meta.exits {
            let slot = self.links.slot(Place {
                func_index: meta.func_index,
                pc,
                calls: meta.exit_calls.get(&id).cloned(),
                expect: meta.exit_expects.get(&id).copied(),
            });
            exit_slots[id as usize] = Some(slot.map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        self.links
            .add_trace(at as u32, &exit_slots, entry)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let size = self.table.size(&self.store);
        if at as u64 >= size {
            wt(self
                .table
                .grow(&mut self.store, at as u64 + 1 - size, Ref::Func(None)))?;
        }
        wt(self
            .table
            .set(&mut self.store, at as u64, Ref::Func(Some(func))))?;
        let touched_globals: Vec<u32> = match &meta.touches {
            Some(t) => t.globals.clone(),
            None => self.globals.keys().copied().collect(),
        };
        // The stack the trace needs: its slots, and the frames of the calls it leaves
        // inside (a callee the module lacks needs more than any stack has).
        let mut stack_need = meta
            .touches
            .as_ref()
            .and_then(|t| t.reads.iter().chain(t.writes.values().flatten()).max())
            .map_or(0, |&s| s as usize + 1);
        let mut calls_need = 0;
        for calls in meta.exit_calls.values() {
            calls_need = calls_need.max(calls.len());
            for call in calls.iter() {
                let frame = self.frame_sizes.get(call.func as usize).copied();
                stack_need = stack_need.max(match frame {
                    Some(size) if size > 0 => call.base as usize + size as usize,
                    _ => usize::MAX,
                });
            }
        }
        // Calls a trace inlined without leaving inside them are not in its IR: it may make
        // up to `MAX_INLINE_DEPTH` of them, each frame at most the module's largest, on top
        // of the anchor's frame (a callee's frame starts inside its caller's). Room for
        // them is needed too, so that trace code never makes a call the interpreter would
        // have trapped on.
        let anchor_frame = self
            .frame_sizes
            .get(meta.func_index as usize)
            .copied()
            .unwrap_or(0);
        stack_need = stack_need.max(anchor_frame as usize + MAX_INLINE_DEPTH * self.max_frame);
        calls_need = calls_need.max(MAX_INLINE_DEPTH);
        self.group_mut(meta.func_index);
        for group in [&mut self.groups[meta.func_index as usize], &mut self.all] {
            group.stack_need = group.stack_need.max(stack_need);
            group.calls_need = group.calls_need.max(calls_need);
            for &g in &touched_globals {
                if let Some((global, info)) = self.globals.get(&g) {
                    if info.mutable && !group.globals.iter().any(|&(i, _, _)| i == g) {
                        group.globals.push((g, *global, info.ty));
                    }
                }
            }
        }
        for k in exit_slots.iter().flatten() {
            self.link_control(*k);
        }
        let loaded = Loaded {
            func_index: meta.func_index,
            root,
            max_slot: meta.touches.as_ref().map(|t| {
                t.reads
                    .iter()
                    .chain(t.writes.values().flatten())
                    .copied()
                    .max()
                    .unwrap_or(0)
            }),
            reads_end: meta
                .touches
                .as_ref()
                .map(|t| t.reads.iter().max().map_or(0, |&s| s + 1)),
            max_pc: meta
                .exits
                .iter()
                .filter(|(id, _)| !meta.exit_calls.contains_key(id))
                .map(|(_, &pc)| pc)
                .max()
                .unwrap_or(0),
            exits_in_calls: meta
                .exit_calls
                .iter()
                .filter_map(|(id, calls)| Some((*meta.exits.get(id)?, Rc::clone(calls))))
                .collect(),
            // A side trace was recorded in this run, from this function.
            checked: !root,
            calls: 0,
            iterations: 0,
            trial: Trial::new(),
            passes_at_first_call: 0,
            ir: meta.ir.clone(),
            anchor_pc: None,
            tree: TreeState::default(),
            side_start: None,
            entries: 0,
            segments: 0,
            handovers: 0,
            detached: false,
            from_library: false,
        };
        if at < self.traces.len() {
            // The code at an index is entered at the same anchor or place whatever
            // replaces it (a tree its root): its profile goes on.
            let old = &self.traces[at];
            let loaded = Loaded {
                entries: old.entries,
                segments: old.segments,
                detached: old.detached,
                ..loaded
            };
            self.traces[at] = loaded;
            // A replaced trace's trial is gone with it, and so is any claim on the token.
            if self.trial_owner == Some(at) {
                self.trial_owner = None;
            }
        } else {
            self.traces.push(loaded);
        }
        Ok(())
    }

    /// The wasmtime global mirroring guest global `index`, created on first use.
    fn global(&mut self, index: u32) -> anyhow::Result<Global> {
        if let Some((g, _)) = self.globals.get(&index) {
            return Ok(*g);
        }
        let info =
            *self.guest.globals.get(&index).ok_or_else(|| {
                anyhow::anyhow!("the trace module imports unknown global {index}")
            })?;
        let ty = GlobalType::new(
            val_type(info.ty),
            if info.mutable {
                Mutability::Var
            } else {
                Mutability::Const
            },
        );
        let initial = self.initial_globals.get(&index).copied().unwrap_or(0);
        let g = wt(Global::new(&mut self.store, ty, from_raw(info.ty, initial)))?;
        self.globals.insert(index, (g, info));
        Ok(g)
    }

    /// Brings wasmtime's idea of the guest memory's size up to the interpreter's.
    fn sync_memory_size(&mut self, interp_len: usize) -> bool {
        if interp_len == self.synced_len {
            return true;
        }
        let Some(memory) = self.guest_memory else {
            return true;
        };
        let seen = memory.data_size(&self.store);
        if interp_len > seen {
            let delta = (interp_len - seen) as u64 / PAGE_BYTES;
            if memory.grow(&mut self.store, delta).is_err() {
                return false;
            }
        }
        self.synced_len = interp_len;
        true
    }

    /// The index in `traces` of the code for `entry`'s anchor, or `NO_CODE`.
    fn resolve(&mut self, entry: &TraceEntry<'_>) -> u32 {
        let anchor = entry.anchor as usize;
        if let Some(&at) = self.by_anchor.get(anchor) {
            if at != UNRESOLVED {
                return at;
            }
        }
        let key = (entry.func_index, entry.anchor_offset);
        if !self.by_key.contains_key(&key) && self.pending.iter().any(|(_, f, a)| (*f, *a) == key) {
            self.compile_pending();
        }
        let at = self.by_key.get(&key).map_or(NO_CODE, |&i| i as u32);
        if self.by_anchor.len() <= anchor {
            self.by_anchor.resize(anchor + 1, UNRESOLVED);
        }
        self.by_anchor[anchor] = at;
        at
    }

    /// Whether trace `at` may run its timed trial now: no other trial is under way, or
    /// the owner's has gone stale (`Trial::holds_token`): a trial still under way then ends
    /// with its trace kept, as its own arrival past `trial::PATIENCE` would have ended it
    /// (and an interpreted window that long is one trace code beat several times over).
    fn claim_trial(&mut self, at: usize) -> bool {
        match self.trial_owner {
            Some(owner) if owner == at => true,
            // An owner whose trial is under way and not stale keeps the token; one whose
            // trial is over or not started cannot be holding it (`Trial::holds_token`).
            Some(owner) if self.traces[owner].trial.holds_token() => false,
            Some(owner) => {
                if !self.traces[owner].trial.is_over() {
                    self.traces[owner].trial = Trial::kept();
                }
                self.trial_owner = Some(at);
                true
            }
            None => {
                self.trial_owner = Some(at);
                true
            }
        }
    }

    /// Marks stale, for a region, the cached roots reached mostly through links
    /// (`REGION_SCAN_ENTRIES`).
    fn find_linked_hot_roots(&mut self) {
        if !self.regions || self.for_recording {
            return;
        }
        let memory = self.links_memory.data(&self.store);
        let hot: Vec<usize> = self
            .traces
            .iter()
            .enumerate()
            .filter(|(at, t)| {
                t.root
                    && t.from_library
                    && !t.detached
                    && !t.tree.linked_hot
                    && !t.tree.stale
                    && t.tree.region.is_empty()
                    && t.entries < REGION_AFTER_ENTRIES
                    && Links::passes(memory, *at as u32) >= REGION_AFTER_LINKED_PASSES
            })
            .map(|(at, _)| at)
            .collect();
        for at in hot {
            self.traces[at].tree.linked_hot = true;
            self.traces[at].tree.stale = true;
            self.stale_trees.push(at);
        }
    }

    /// Writes a u32 word of the links memory's header (`links::DEPTH_LIMIT` and the like).
    fn set_word(&mut self, at: u32, value: u32) {
        let at = at as usize;
        // SAFETY: as in `last_drive`; the header words lie below `HEAP`, and no wasm code
        // runs while this writes.
        let data = unsafe { std::slice::from_raw_parts_mut(self.links_ptr, at + 4) };
        data[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Links slot `k` if its place is a return, or a call whose callee has an entry trace
    /// (a side trace at its pc 0): the driver then makes the call itself
    /// (`Links::link_call`). Returns are linked at once: with no call to return to they
    /// end the chain as before.
    fn link_control(&mut self, k: u32) {
        // Where a linked call returns to may be a return or another call: linked too, in
        // a loop (a run of calls is as long as the code).
        let mut next = Some(k);
        while let Some(k) = next.take() {
            if !self.link_calls || self.links.target_kind(k) != links::TargetKind::None {
                return;
            }
            let place = self.links.slots[k as usize].place.clone();
            let (callee, shift, back, entry) = match self.call_at(&place) {
                Some((callee, shift)) => {
                    let back = Place {
                        func_index: place.func_index,
                        pc: place.pc + 1,
                        calls: place.calls.clone(),
                        expect: None,
                    };
                    let Some(entry) = self.links.find(&Place::at(callee, 0)) else {
                        return;
                    };
                    if !self.is_entry_trace(entry, callee) {
                        return;
                    }
                    (callee, shift, back, entry)
                }
                None => match self.header_in_call(&place) {
                    Some(link) => link,
                    None => {
                        // A return inside inlined calls goes on in their caller: not linked.
                        if place.calls.is_none()
                            && self.module.control_at(place.func_index, place.pc)
                                == Some(ControlAt::Return)
                        {
                            self.links.link_return(k);
                        }
                        return;
                    }
                },
            };
            let Ok(back) = self.links.slot(back) else {
                return;
            };
            if self.links.link_call(k, callee, entry, shift, back) {
                self.calls_linked += 1;
                self.stats.borrow_mut().calls_linked += 1;
                next = Some(back);
            }
        }
    }

    /// At a loop header inside inlined calls, the innermost callee's loop trace, entered
    /// as if the driver had made that call (the trace that inlined it set its frame up):
    /// the callee, its frame base from the frame of the place's function, where its
    /// caller goes on, and the slot the loop trace is linked at. `None` elsewhere, or
    /// with no loop trace linked there.
    fn header_in_call(&self, place: &Place) -> Option<(u32, u32, Place, u32)> {
        let calls = place.calls.as_deref()?;
        let (innermost, outer) = calls.split_last()?;
        if self.module.control_at(innermost.func, place.pc) != Some(ControlAt::LoopHeader) {
            return None;
        }
        let entry = self.links.find(&Place::at(innermost.func, place.pc))?;
        let links::Target::Trace(t) = *self.links.target(entry) else {
            return None;
        };
        let root = self.traces.get(t as usize)?;
        if !(root.root && root.func_index == innermost.func && root.anchor_pc == Some(place.pc)) {
            return None;
        }
        let back = Place {
            func_index: place.func_index,
            pc: innermost.return_pc,
            calls: (!outer.is_empty()).then(|| Rc::from(outer)),
            expect: None,
        };
        Some((innermost.func, innermost.base, back, entry))
    }

    /// The call of one of the module's functions at `place`, if that is where it is: the
    /// callee, and its frame base in slots from the frame of the place's function (inside
    /// inlined calls, from the innermost callee's base on).
    fn call_at(&self, place: &Place) -> Option<(u32, u32)> {
        let (code_func, origin) = match place.calls.as_deref() {
            None => (place.func_index, 0),
            Some(calls) => {
                let innermost = calls.last()?;
                (innermost.func, innermost.base)
            }
        };
        match self.module.control_at(code_func, place.pc)? {
            ControlAt::Call { callee, base, .. } => Some((callee, origin.checked_add(base)?)),
            ControlAt::Return | ControlAt::LoopHeader => None,
        }
    }

    /// Whether slot `k` links an entry trace of `callee`: a side trace from its pc 0 that
    /// reads no slot but its parameters, the only ones a call the driver makes sets (the
    /// interpreter zeroes the locals; an entry trace has them as zeros). A loop trace
    /// whose anchor is at pc 0 is linked at the same place, and reads its locals.
    fn is_entry_trace(&self, k: u32, callee: u32) -> bool {
        let links::Target::Trace(t) = *self.links.target(k) else {
            return false;
        };
        let Some(params) = self
            .module
            .func_type(callee)
            .map(|ty| ty.params.len() as u32)
        else {
            return false;
        };
        self.traces.get(t as usize).is_some_and(|loaded| {
            loaded.is_entry()
                && loaded.func_index == callee
                && loaded.reads_end.is_some_and(|end| end <= params)
        })
    }

    /// What the driver counted in the last drive: its segments (at `SEGMENTS`) or its
    /// trace calls (at `CALLS`); at `links::DEPTH`, the frames it left pushed in the low
    /// 32 bits.
    fn last_drive(&self, at: u32) -> u64 {
        let at = at as usize;
        // SAFETY: `links_ptr` is where the links memory's bytes are, which are at least
        // `HEAP` bytes (it was made so), and no wasm code runs while this reads them.
        let data = unsafe { std::slice::from_raw_parts(self.links_ptr, at + 8) };
        u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
    }

    fn bump(&self, f: impl FnOnce(&mut TierStats)) {
        f(&mut self.stats.borrow_mut());
    }
}

/// Whether a root whose first `calls` drives made `passes` passes of its anchor in
/// `segments` segments needs a timed trial (`trial.rs`) to show it beats the
/// interpreter. Not when its drives are long and loop inside the trace itself: a loop
/// iteration in trace code costs a fraction of an interpreted one on either compiler, and
/// a trial's interpreted window costs such a loop the most. Where drives are short
/// (entry costs are not repaid many times over) or go round through linked traces (each
/// segment a call through the driver, which Winch code may not repay), the clock decides.
fn needs_trial(passes: u64, segments: u64, calls: u32) -> bool {
    let calls = u64::from(calls.max(1));
    let short = passes / calls < LONG_DRIVE_PASSES;
    // A pass that takes more than one segment goes through linked traces.
    let chained = segments * 2 > passes * 3;
    short || chained
}

/// A module that only defines and exports one memory, `memory`.
fn memory_module(min_pages: u32, max_pages: Option<u32>) -> Vec<u8> {
    let mut module = wasm_encoder::Module::new();
    let mut memories = wasm_encoder::MemorySection::new();
    memories.memory(wasm_encoder::MemoryType {
        minimum: u64::from(min_pages),
        maximum: max_pages.map(u64::from),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    let mut exports = wasm_encoder::ExportSection::new();
    exports.export("memory", wasm_encoder::ExportKind::Memory, 0);
    module.section(&exports);
    module.finish()
}

/// A wasmtime result as an `anyhow` one (wasmtime has its own error type).
fn wt<T>(result: wasmtime::Result<T>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e:#}"))
}

fn val_type(ty: Type) -> ValType {
    match ty {
        Type::I32 => ValType::I32,
        Type::I64 => ValType::I64,
        Type::F32 => ValType::F32,
        Type::F64 => ValType::F64,
    }
}

fn from_raw(ty: Type, raw: u64) -> Val {
    match ty {
        Type::I32 => Val::I32(raw as u32 as i32),
        Type::I64 => Val::I64(raw as i64),
        Type::F32 => Val::F32(raw as u32),
        Type::F64 => Val::F64(raw),
    }
}

fn to_raw(v: &Val) -> u64 {
    match v {
        Val::I32(x) => *x as u32 as u64,
        Val::I64(x) => *x as u64,
        Val::F32(x) => *x as u64,
        Val::F64(x) => *x,
        _ => 0,
    }
}

/// The guest trap a wasmtime trap in trace code is.
fn trap_kind(error: &wasmtime::Error) -> TrapKind {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::MemoryOutOfBounds) => TrapKind::MemoryOutOfBounds,
        Some(wasmtime::Trap::IntegerDivisionByZero) => TrapKind::IntegerDivideByZero,
        Some(wasmtime::Trap::IntegerOverflow) => TrapKind::IntegerOverflow,
        Some(wasmtime::Trap::BadConversionToInteger) => TrapKind::InvalidConversionToInteger,
        Some(wasmtime::Trap::StackOverflow) => TrapKind::CallStackExhausted,
        _ => TrapKind::Host(format!("trace code failed: {error:#}")),
    }
}

impl TraceTier for WasmtimeTier {
    fn run(&mut self, entry: TraceEntry<'_>) -> Result<TierExit, TrapKind> {
        if !self.in_flight.is_empty() {
            self.install_compiled();
        }
        let at = self.resolve(&entry);
        if at == NO_CODE {
            // No code, and none will come (a live trace that failed to compile).
            self.bump(|s| s.declined += 1);
            return Ok(TierExit::Detach);
        }
        let loaded = &mut self.traces[at as usize];
        if !loaded.checked {
            // A trace touches its function's frame and the frames of the calls it leaves
            // inside: nothing else of the stack.
            let frames_end = loaded
                .exits_in_calls
                .iter()
                .flat_map(|(_, calls)| calls.iter())
                .map(|c| {
                    let size = self.frame_sizes.get(c.func as usize).copied().unwrap_or(0);
                    c.base as usize + size as usize
                })
                .fold(entry.frame_size as usize, usize::max)
                .min(entry.frame.len());
            let slots_fit = loaded.max_slot.is_none_or(|s| (s as usize) < frames_end);
            let calls_fit = loaded
                .exits_in_calls
                .iter()
                .all(|(pc, calls)| entry.calls_fit(calls, *pc).is_ok());
            if loaded.max_pc >= entry.code_len || !slots_fit || !calls_fit {
                // Exits or slots that do not fit the function (or calls it does not make):
                // not this function's trace.
                self.by_anchor[entry.anchor as usize] = NO_CODE;
                self.bump(|s| s.declined += 1);
                return Ok(TierExit::Detach);
            }
            loaded.checked = true;
            loaded.anchor_pc = Some(entry.anchor_pc);
            // Side traces may have been linked in its function before (a cached root of a
            // loop first entered now): its tree is looked at with the next stale ones.
            if loaded.root && loaded.ir.is_some() && !loaded.tree.stale && !self.for_recording {
                loaded.tree.stale = true;
                self.stale_trees.push(at as usize);
            }
            // Its anchor's pc is known now: exits landing on the loop header go on in it.
            // (Without a slot it still runs, entered from the interpreter only.)
            if let Ok(k) = self
                .links
                .slot(Place::at(entry.func_index, entry.anchor_pc))
            {
                self.links.set_entry(at, k);
                self.links.link(k, at);
            }
        }
        if !self.stale_trees.is_empty() {
            self.grow_stale_trees();
        }
        // While a tree is stale or code is on the compile thread, drives return to the host
        // now and then to rebuild or install it.
        let yield_after = if self.stale_trees.is_empty() && self.in_flight.is_empty() {
            u64::MAX
        } else {
            TREE_YIELD_SEGMENTS
        };
        if yield_after != self.yield_after {
            self.yield_after = yield_after;
            self.links.set_yield_after(yield_after);
        }
        // A trial waits, as probation does, while the function's code is compiling: exits
        // meant for it come back to the host meanwhile.
        let loaded = &self.traces[at as usize];
        if loaded.root
            && !self.for_recording
            && self.groups[entry.func_index as usize].compiling == 0
            && loaded.calls >= TRIAL_AFTER_CALLS
            && !loaded.trial.is_over()
            && self.claim_trial(at as usize)
        {
            let passes = Links::passes(self.links_memory.data(&self.store), at);
            let step = self.traces[at as usize]
                .trial
                .arrive(passes, self.uncharged);
            if matches!(step, Step::Keep | Step::Detach) {
                self.trial_owner = None;
            }
            match step {
                Step::Trace => {}
                Step::Interpret(passes) => return Ok(TierExit::Interpret { passes }),
                Step::Keep => self.bump(|s| s.trials += 1),
                Step::Detach => {
                    self.traces[at as usize].detached = true;
                    self.by_anchor[entry.anchor as usize] = NO_CODE;
                    self.bump(|s| {
                        s.trials += 1;
                        s.lost_trials += 1;
                    });
                    return Ok(TierExit::Detach);
                }
            }
        }
        let group = &self.groups[entry.func_index as usize];
        if entry.frame.len() < group.stack_need || entry.call_room < group.calls_need {
            // Too deep for the frames of calls some trace leaves inside: the interpreter
            // runs this pass (and traps where making those calls would).
            self.bump(|s| s.declined += 1);
            return Ok(TierExit::Declined);
        }
        if let Some(m) = &entry.memory {
            if !self.sync_memory_size(m.len()) {
                self.bump(|s| s.declined += 1);
                return Ok(TierExit::Declined);
            }
        }
        // Trace code works on the frame in place: it must be where the frame memory views
        // the stack (a tier installed in another store than the one it was made for would
        // not be).
        let frame_at = LEADING_BYTES + entry.stack_index * SLOT_BYTES as usize;
        if frame_at.wrapping_add(self.frame_ptr as usize) != entry.frame.as_ptr() as usize
            || frame_at + entry.frame.len() * SLOT_BYTES as usize > self.frame_len
        {
            self.bump(|s| s.declined += 1);
            return Ok(TierExit::Declined);
        }
        if !self.flush_links() {
            self.bump(|s| s.declined += 1);
            return Ok(TierExit::Declined);
        }
        if self.traces[at as usize].calls == 0 {
            self.traces[at as usize].passes_at_first_call =
                Links::passes(self.links_memory.data(&self.store), at);
        }
        // Every trace of this function was added with its group; once calls are linked, a
        // drive may run any trace.
        let group = if self.calls_linked > 0 {
            let frame_end = frame_at + entry.frame.len() * SLOT_BYTES as usize;
            // Each frame the driver pushes is a call, plus the calls its caller's trace
            // inlined around it (at most `calls_need`, a cached trace's exits included),
            // for the interpreter to set up if the drive ends inside.
            let depth_limit = (entry.call_room.saturating_sub(self.all.calls_need)
                / (1 + self.all.calls_need))
                .min(links::SHADOW_CAPACITY as usize);
            let call_room = self.all.stack_need.saturating_mul(SLOT_BYTES as usize);
            self.set_word(links::DEPTH_LIMIT, depth_limit as u32);
            self.set_word(links::FRAME_END, frame_end.min(u32::MAX as usize) as u32);
            self.set_word(links::CALL_ROOM, call_room.min(u32::MAX as usize) as u32);
            &self.all
        } else {
            &self.groups[entry.func_index as usize]
        };
        let result = drive(
            &mut self.store,
            self.drive,
            at,
            group,
            self.frame_ptr,
            frame_at,
            entry.globals,
        );
        if let Some(m) = &entry.memory {
            // The trace may have grown the memory; wasmtime knows, and so does `m`.
            self.synced_len = m.len();
        }
        let entries = {
            let mut stats = self.stats.borrow_mut();
            stats.entries += 1;
            stats.entries
        };
        if self.calls_linked > 0 && entries % REGION_SCAN_ENTRIES == 0 {
            self.find_linked_hot_roots();
        }
        let drive_segments = self.last_drive(SEGMENTS);
        let drive_handovers = self.last_drive(CALLS).saturating_sub(1);
        let loaded = &mut self.traces[at as usize];
        loaded.entries += 1;
        if result.is_ok() {
            // (A drive that trapped stored no counts.)
            loaded.segments += drive_segments;
            loaded.handovers += drive_handovers;
        }
        if loaded.entries == REGION_AFTER_ENTRIES
            && loaded.root
            && loaded.from_library
            && self.regions
            && !self.for_recording
            && !loaded.tree.stale
        {
            // Time for a region, if its links reach another loop (`build_tree`).
            loaded.tree.stale = true;
            self.stale_trees.push(at as usize);
        }
        let passes = (self.traces[at as usize].calls + 1 == TRIAL_AFTER_CALLS).then(|| {
            Links::passes(self.links_memory.data(&self.store), at)
                .saturating_sub(self.traces[at as usize].passes_at_first_call)
        });
        // While side traces or a tree of the function compile, the exits they are for still
        // come back here: probation waits for them.
        let compiling = self.groups[entry.func_index as usize].compiling > 0;
        let loaded = &mut self.traces[at as usize];
        if loaded.calls < PROBATION_CALLS && !compiling {
            loaded.calls += 1;
            if result.is_ok() {
                // Beyond the entry's own call: a lone trace counts its loop iterations,
                // as before linking.
                loaded.iterations += drive_segments.saturating_sub(1);
            }
            let mean = loaded.iterations / u64::from(loaded.calls);
            if loaded.calls == PROBATION_CALLS && mean < MIN_ITERATIONS_PER_CALL {
                // The call ran; its exit stands. The anchor goes back to the interpreter.
                loaded.detached = true;
                self.by_anchor[entry.anchor as usize] = NO_CODE;
                self.stats.borrow_mut().detached += 1;
                if self.trial_owner == Some(at as usize) {
                    self.trial_owner = None;
                }
            }
            if let Some(passes) = passes {
                let segments = loaded.iterations + u64::from(loaded.calls);
                if !needs_trial(passes, segments, loaded.calls) {
                    loaded.trial = Trial::kept();
                }
            }
        }
        match result {
            Ok(slot) => {
                // A drive that ran to the yield limit stopped at a linked slot (a selector's
                // included): not a miss, nothing to record there.
                let yielded = self.yield_after != u64::MAX && drive_segments >= self.yield_after;
                let room = Room {
                    func_index: entry.func_index,
                    code_len: entry.code_len,
                    frame_slots: entry.frame.len(),
                    call_room: entry.call_room,
                };
                self.exit_at(slot, &room, yielded)
            }
            Err(kind) => {
                self.stats.borrow_mut().traps += 1;
                Err(kind)
            }
        }
    }

    fn recorded(&mut self, _instance: InstanceId, anchor: u32, trace: &RecordedTrace) -> bool {
        let key = (trace.func_index, trace.anchor_offset);
        if !self.live || self.by_key.contains_key(&key) {
            return false;
        }
        self.pending
            .push((trace.trace.clone(), trace.func_index, trace.anchor_offset));
        if let Some(at) = self.by_anchor.get_mut(anchor as usize) {
            *at = UNRESOLVED;
        }
        true
    }

    fn side_traces(&self) -> Vec<SideTraceRecord> {
        self.linked_side_traces()
    }

    fn loop_passes(&self) -> Vec<((u32, u32), u64)> {
        let links_memory = self.links_memory.data(&self.store);
        self.by_key
            .iter()
            .map(|(&key, &at)| (key, Links::passes(links_memory, at as u32)))
            .collect()
    }

    fn report(&self) -> Vec<TraceReport> {
        let links_memory = self.links_memory.data(&self.store);
        let anchors: HashMap<usize, u32> = self
            .by_key
            .iter()
            .map(|(&(_, offset), &at)| (at, offset))
            .collect();
        self.traces
            .iter()
            .enumerate()
            .filter_map(|(at, t)| {
                let start = match (&t.side_start, anchors.get(&at)) {
                    (Some((side, _)), _) => ReportStart::Side { pc: side.pc },
                    (None, Some(&anchor_offset)) => ReportStart::Loop { anchor_offset },
                    (None, None) => return None,
                };
                Some(TraceReport {
                    func_index: t.func_index,
                    start,
                    entries: t.entries,
                    segments: t.segments,
                    handovers: t.handovers,
                    passes: Links::passes(links_memory, at as u32),
                    loops: t
                        .ir
                        .as_ref()
                        .is_some_and(|ir| matches!(ir.end, ir::End::Loop { .. })),
                    tree_sides: t.tree.inlined.iter().map(|(_, v)| v.len() as u32).sum(),
                    detached: t.detached,
                })
            })
            .collect()
    }

    fn side_recorded(
        &mut self,
        _instance: InstanceId,
        func_index: u32,
        pc: u32,
        calls: &[ir::InlinedCall],
        trace: Option<&RecordedTrace>,
    ) {
        if let Some(since) = self.recording_since.take() {
            self.uncharged += since.elapsed();
        }
        // The slot that asked for the recording (several places may share its pc).
        let k = match self.side_request.take() {
            Some(k) => k,
            None => {
                let mut place = Place::at(func_index, pc);
                place.calls = (!calls.is_empty()).then(|| Rc::from(calls));
                match self.links.slot(place) {
                    Ok(k) => k,
                    Err(_) => return,
                }
            }
        };
        let side = trace
            .filter(|t| self.live && makes_progress(t, pc, calls))
            .and_then(|t| self.side_trace_code(k, t));
        let Some((code, selector)) = side else {
            self.links.slots[k as usize].failures += 1;
            return;
        };
        if let Some(id) = self
            .compiler()
            .and_then(|c| c.submit(code.module.clone(), None))
        {
            // Exits here go on to the interpreter until the code is linked: the function's
            // roots are judged once it is.
            self.links.slots[k as usize].pending = true;
            self.group_mut(func_index).compiling += 1;
            self.judge_afresh(func_index);
            self.in_flight.insert(
                id,
                InFlight::Side {
                    k,
                    code,
                    selector,
                    func_index,
                },
            );
            return;
        }
        let funcs = self.instantiate(&code);
        if !self.finish_side_trace(k, &code, funcs, selector, func_index) {
            self.links.slots[k as usize].failures += 1;
        }
    }
}

impl WasmtimeTier {
    /// Where the interpreter goes on after a drive that ended at link slot `slot`: its
    /// pc, inside the calls trace code made (the frames the driver left on its shadow
    /// stack) and the calls the exit's trace inlined; or, where exits keep ending there
    /// and a side trace could take over, the same place with a request to record one (at
    /// an unlinked call: the callee's entry trace).
    fn exit_at(&mut self, slot: u32, room: &Room, yielded: bool) -> Result<TierExit, TrapKind> {
        if (slot as usize) >= self.links.slots.len() {
            let why = if slot == BAD_EXIT {
                "trace code returned an exit id its trace does not have".to_string()
            } else {
                format!("trace code ended at link slot {slot}, which does not exist")
            };
            return Err(TrapKind::Host(why));
        }
        // The calls trace code made, numbered from the anchor's frame; `origin` is where
        // the frame the exit's trace ran on starts.
        let mut made: Vec<ir::InlinedCall> = Vec::new();
        let mut origin = 0u32;
        // (Read through the pointer first: most drives end with no frame pushed.)
        if self.calls_linked > 0 && self.last_drive(links::DEPTH) as u32 > 0 {
            let frames = Links::shadow_frames(self.links_memory.data(&self.store))
                .ok_or_else(|| TrapKind::Host("the driver's shadow stack is corrupt".into()))?;
            for frame in frames {
                let back = self
                    .links
                    .slots
                    .get(frame.return_slot as usize)
                    .ok_or_else(|| {
                        TrapKind::Host(format!(
                            "the shadow stack names link slot {}, which does not exist",
                            frame.return_slot
                        ))
                    })?;
                // The caller's trace may have made the call inside calls it inlined.
                for call in back.place.calls.as_deref().unwrap_or_default() {
                    made.push(ir::InlinedCall {
                        base: origin + call.base,
                        ..*call
                    });
                }
                origin += frame.shift;
                made.push(ir::InlinedCall {
                    func: frame.callee,
                    base: origin,
                    return_pc: back.place.pc,
                });
            }
        }
        if self.links.target_kind(slot) == links::TargetKind::None {
            // A call whose callee got an entry trace since, or a return: linked from now on.
            self.link_control(slot);
        }
        let kind = self.links.target_kind(slot);
        let info = &self.links.slots[slot as usize];
        let pc = info.place.pc;
        let inlined: Vec<ir::InlinedCall> = info.place.calls.as_deref().map_or(Vec::new(), |c| {
            c.iter()
                .map(|call| ir::InlinedCall {
                    base: call.base + origin,
                    ..*call
                })
                .collect()
        });
        // Exits inside inlined calls were checked against the code at the trace's first
        // entry (`calls_fit`); exits inside calls trace code made are checked here.
        if !inlined.is_empty() {
            self.stats.borrow_mut().call_exits += 1;
        }
        if !made.is_empty() {
            self.stats.borrow_mut().unwinds += 1;
        } else if inlined.is_empty() && pc >= room.code_len {
            return Err(TrapKind::Host(format!(
                "trace code exited at pc {pc}, outside its function ({} instructions)",
                room.code_len
            )));
        }
        let trace_from = made.len() as u32;
        let mut calls = made;
        calls.extend(inlined);
        if trace_from > 0 {
            room.check(&self.module, &calls, pc)?;
        }
        let wants_side_trace = self.live
            && !info.pending
            // A selector may still lack a side trace for this arm.
            && matches!(kind, links::TargetKind::None | links::TargetKind::Selector)
            && !yielded
            && info.failures < MAX_SIDE_FAILURES
            && info.side_traces < MAX_SIDE_TRACES_PER_PC;
        let entry_of = self.link_calls.then(|| self.call_at(&info.place)).flatten();
        if wants_side_trace {
            let info = &mut self.links.slots[slot as usize];
            info.misses += 1;
            if info.misses >= SIDE_EXIT_HOT {
                info.misses = 0;
                // At a call, what links it is the callee's entry trace; only if that can
                // never be had does a side trace from the call (inlining the callee) take
                // the place.
                let entry_failed = |tier: &Self, callee: u32| {
                    tier.links
                        .find(&Place::at(callee, 0))
                        .is_some_and(|e| tier.links.slots[e as usize].failures >= MAX_SIDE_FAILURES)
                };
                if let Some((callee, base)) = entry_of.filter(|&(c, _)| !entry_failed(self, c)) {
                    if let Some(request) =
                        self.entry_request(callee, base, pc, origin, &calls, room)
                    {
                        return Ok(request);
                    }
                } else {
                    self.stats.borrow_mut().side_requests += 1;
                    self.recording_since = Some(Instant::now());
                    self.side_request = Some(slot);
                    return Ok(if calls.is_empty() {
                        TierExit::Record { pc }
                    } else {
                        TierExit::RecordInCalls {
                            pc,
                            calls: Rc::from(calls),
                            trace_from,
                        }
                    });
                }
            }
        }
        Ok(if calls.is_empty() {
            TierExit::Resume { pc }
        } else {
            TierExit::ResumeInCalls {
                pc,
                calls: Rc::from(calls),
            }
        })
    }

    /// A request to record `callee`'s entry trace from the exit at its call (at `pc`,
    /// its frame `base` slots above the caller's, which starts at `origin` inside the
    /// `calls` trace code made), if one may be recorded: the interpreter makes the call
    /// and records from the callee's pc 0 in its own frame.
    fn entry_request(
        &mut self,
        callee: u32,
        base: u32,
        pc: u32,
        origin: u32,
        calls: &[ir::InlinedCall],
        room: &Room,
    ) -> Option<TierExit> {
        // `base` counts from the frame of the exit's trace, which starts at `origin`.
        let e = self.links.slot(Place::at(callee, 0)).ok()?;
        let entry = &self.links.slots[e as usize];
        if entry.pending
            || entry.failures >= MAX_SIDE_FAILURES
            || self.links.target_kind(e) != links::TargetKind::None
        {
            return None;
        }
        let mut calls = calls.to_vec();
        calls.push(ir::InlinedCall {
            func: callee,
            base: origin + base,
            return_pc: pc + 1,
        });
        room.check(&self.module, &calls, 0).ok()?;
        self.stats.borrow_mut().side_requests += 1;
        self.recording_since = Some(Instant::now());
        self.side_request = Some(e);
        Some(TierExit::RecordInCalls {
            pc: 0,
            trace_from: calls.len() as u32,
            calls: Rc::from(calls),
        })
    }

    /// Whether slot `k` (at `selector`'s arm, for a `br_table`'s) has no code yet.
    fn side_trace_fits(&self, k: u32, selector: Option<Selector>) -> bool {
        match selector {
            Some(sel) => self.links.arm_is_free(k, sel.index_slot, sel.arms, sel.arm),
            None => matches!(self.links.target_kind(k), links::TargetKind::None),
        }
    }

    /// The naive code (as live JIT makes) of side trace `trace` for slot `k`, and the
    /// `br_table` arm it is for, if any; `None` if the slot has code for it already or it
    /// cannot be emitted.
    fn side_trace_code(
        &mut self,
        k: u32,
        trace: &RecordedTrace,
    ) -> Option<(TraceCode, Option<Selector>)> {
        let selector = match trace.start {
            TraceStart::Exit { selector, .. } => selector,
            TraceStart::Loop => return None,
        };
        if !self.side_trace_fits(k, selector) {
            return None;
        }
        let batch = [(
            &trace.trace,
            trace.func_index,
            trace.anchor_offset,
            EmitKind::Naive,
        )];
        match TraceCode::build(&self.guest, &batch) {
            Ok(code) => Some((code, selector)),
            Err(_) => {
                self.bump(|s| s.live_failures += 1);
                None
            }
        }
    }

    /// Links side trace `funcs` (compiled from `code`, of function `func_index`) at slot
    /// `k`, then lets its function's roots take it in: their probation starts again and
    /// their trees go stale. `false` if it could not be linked.
    fn finish_side_trace(
        &mut self,
        k: u32,
        code: &TraceCode,
        funcs: anyhow::Result<Vec<Func>>,
        selector: Option<Selector>,
        func_index: u32,
    ) -> bool {
        // Nothing else links here while the slot is pending; checked again all the same,
        // so that a trace is only added where it will be linked.
        if !self.side_trace_fits(k, selector) {
            return false;
        }
        let at = self.traces.len();
        let added = funcs
            .and_then(|funcs| self.add_function(at, &code.traces[0], funcs[0], false, Some(k)));
        if added.is_err() {
            self.bump(|s| s.live_failures += 1);
            return false;
        }
        if !self.link_side_trace(k, at, selector, code.traces[0].anchor_offset) {
            return false;
        }
        self.bump(|s| s.side_traces += 1);
        // The function's traces do more per entry now: judge them afresh, and their
        // trees may take the side trace in.
        self.judge_afresh(func_index);
        for (i, t) in self.traces.iter_mut().enumerate() {
            if t.func_index == func_index
                && !self.for_recording
                && t.grows_tree()
                && !t.tree.stale
                && t.ir.is_some()
            {
                t.tree.stale = true;
                self.stale_trees.push(i);
            }
        }
        // On the host now: a tree whose rebuild is due takes the side trace in at once
        // (its root may not come back to the host for a long time).
        self.grow_stale_trees();
        true
    }

    /// Rebuilds the trees that are stale and due (`wants_tree`). Called at every return
    /// to the host while some tree is stale: a root whose drives are long (a dispatch
    /// loop running through its linked side traces) is entered from the host seldom, so
    /// waiting for its own entry would leave the new side traces behind the driver.
    fn grow_stale_trees(&mut self) {
        let stale = std::mem::take(&mut self.stale_trees);
        for at in stale {
            if self.wants_tree(at) {
                self.build_tree(at);
            }
            let t = &self.traces[at];
            let tree = &t.tree;
            if t.grows_tree() && tree.stale && !tree.failed && tree.builds < MAX_TREE_BUILDS {
                self.stale_trees.push(at);
            }
        }
    }

    /// Whether root `at` should (re)build its tree now: side traces were linked in its
    /// function since the last build, it has the IR to build from, and the last build's
    /// cost has been repaid (`TREE_REBUILD_RATIO`).
    fn wants_tree(&self, at: usize) -> bool {
        let t = &self.traces[at];

        let tree = &t.tree;
        t.grows_tree()
            && tree.stale
            && !tree.failed
            && tree.builds < MAX_TREE_BUILDS
            && t.ir.is_some()
            && !tree.building
            && tree.next_build.is_none_or(|when| Instant::now() >= when)
    }

    /// What root `at`'s tree would inline now: at each root exit whose pc has side traces
    /// linked (the first exit per pc: each side trace is inlined once), those side traces,
    /// within `MAX_TREE_SIDE_INSTS`.
    fn grow_tree(&self, at: usize) -> Option<(Tree, InlinedSides)> {
        let loaded = &self.traces[at];
        let root = loaded.ir.as_ref()?;
        // An entry trace ends in an exit and has no anchor: nothing loops back to it.
        let anchor_pc = match (&root.end, loaded.anchor_pc) {
            (ir::End::Loop { .. }, Some(pc)) if loaded.root => pc,
            (ir::End::Exit(_), _) if loaded.is_entry() => u32::MAX,
            _ => return None,
        };
        let side = |t: u32| {
            let side = self.traces.get(t as usize)?;
            (!side.root).then_some(side.ir.as_ref()?)
        };
        let mut budget = MAX_TREE_SIDE_INSTS;
        let mut take = |t: u32| -> Option<Trace> {
            let ir = side(t)?;
            budget = budget.checked_sub(ir.body.len())?;
            Some((**ir).clone())
        };
        let mut seen = BTreeSet::new();
        let mut branches = Vec::new();
        let mut inlined = Vec::new();
        let expects = trace_code::exit_expects([&**root], root.exits().map(|e| (e.id, e)));
        for exit in root.exits() {
            let place = Place {
                func_index: loaded.func_index,
                pc: exit.pc,
                calls: (!exit.calls.is_empty()).then(|| Rc::from(exit.calls.as_slice())),
                expect: expects.get(&exit.id).copied(),
            };
            let Some(k) = self.links.find(&place) else {
                continue;
            };
            if !seen.insert(k) {
                continue;
            }
            match self.links.target(k) {
                links::Target::Trace(t) => {
                    if let Some(trace) = take(*t) {
                        branches.push(Branch {
                            exit: exit.id,
                            arms: Arms::One(trace),
                        });
                        inlined.push((exit.id, vec![*t]));
                    }
                }
                links::Target::Selector {
                    index_slot, arms, ..
                } => {
                    let traces: Vec<Option<Trace>> =
                        arms.iter().map(|a| a.and_then(&mut take)).collect();
                    let indices: Vec<u32> = arms
                        .iter()
                        .zip(&traces)
                        .filter_map(|(a, t)| t.as_ref().and(*a))
                        .collect();
                    if !indices.is_empty() {
                        branches.push(Branch {
                            exit: exit.id,
                            arms: Arms::Table {
                                index_slot: *index_slot,
                                arms: traces,
                            },
                        });
                        inlined.push((exit.id, indices));
                    }
                }
                // Calls and returns go on through the driver.
                links::Target::None | links::Target::Call { .. } | links::Target::Return => {}
            }
        }
        let tree = Tree {
            root: (**root).clone(),
            anchor_pc,
            branches,
        };
        Some((tree, inlined))
    }

    /// Builds root `at`'s tree and puts it in the root's place (same trace index, so
    /// every link to the root now enters the tree). A tree that would inline what the
    /// current one does is not rebuilt; one that fails to build leaves the root as it is.
    fn build_tree(&mut self, at: usize) {
        self.traces[at].tree.stale = false;
        // A root is an entry of one region at most: growing another from a root already
        // in one would take that one's roots over, and they would rebuild each other.
        let root = &self.traces[at];
        let in_region = !root.tree.region.is_empty();
        let short_drives =
            root.segments <= root.entries.saturating_mul(REGION_MAX_SEGMENTS_PER_ENTRY);
        let dense_handovers = root.segments
            <= root
                .handovers
                .saturating_mul(REGION_MAX_SEGMENTS_PER_HANDOVER);
        if self.regions
            && !in_region
            && ((short_drives || dense_handovers) && root.entries >= REGION_AFTER_ENTRIES
                || root.tree.linked_hot)
        {
            if let Some((region, members)) = self.grow_region(at) {
                self.build_region(region, members);
                return;
            }
        }
        let Some((tree, inlined)) = self.grow_tree(at) else {
            return;
        };
        if inlined.is_empty() || inlined == self.traces[at].tree.inlined {
            return;
        }
        let func_index = self.traces[at].func_index;
        // An entry trace's key is its first instruction's offset, and it is entered at its
        // function's pc 0.
        let anchor_offset = match &self.traces[at].side_start {
            Some((_, offset)) => *offset,
            None => self
                .by_key
                .iter()
                .find_map(|(&(f, a), &i)| (i == at && f == func_index).then_some(a))
                .unwrap_or(0),
        };
        let entry_pc = match self.traces[at].is_entry() {
            true => Some(0),
            false => self.traces[at].anchor_pc,
        };
        let entry = entry_pc.and_then(|pc| self.links.find(&Place::at(func_index, pc)));
        let code = match TraceCode::build_tree(&self.guest, &tree, func_index, anchor_offset) {
            Ok(code) => code,
            Err(_) => {
                self.traces[at].tree.failed = true;
                self.bump(|s| s.tree_failures += 1);
                return;
            }
        };
        self.traces[at].tree.builds += 1;
        // Made of a cache library's traces only: the same bytes every run, so its code
        // is kept in the code cache like the library's.
        let from_library = self.traces[at].from_library
            && inlined
                .iter()
                .flat_map(|(_, sides)| sides)
                .all(|&t| self.traces[t as usize].from_library);
        let code_cache = self.code_cache_for(from_library);
        let looked_up = code_cache.is_some();
        // Code the code cache holds loads now, as a region's does (`build_region`): the
        // tree runs from the next entry on, and no thread is needed for it.
        let cached = code_cache
            .as_ref()
            .is_some_and(|c| c.holds(&self.engine, &code.module));
        let submitted = if cached {
            None
        } else {
            self.compiler()
                .and_then(|c| c.submit(code.module.clone(), code_cache))
        };
        if let Some(id) = submitted {
            self.traces[at].tree.building = true;
            self.group_mut(func_index).compiling += 1;
            self.in_flight.insert(
                id,
                InFlight::Tree {
                    at,
                    code,
                    inlined,
                    entry,
                    looked_up,
                },
            );
            return;
        }
        let started = Instant::now();
        let funcs = self.instantiate_with(&code, from_library);
        self.finish_tree(at, &code, funcs, inlined, entry, started.elapsed());
    }

    /// The region root `at`'s links reach: `at`, then every trace of its function some
    /// member's exit is linked to (a `br_table`'s selector aside, and a trace linked at
    /// its own exit, which made no progress), within `MAX_REGION_MEMBERS` and
    /// `MAX_REGION_INSTS`; with the member indices. `None` unless it holds another loop's
    /// root (a loop alone is a tree's, whose branches are direct) and every member has
    /// its IR.
    ///
    /// Members come from a cache library only: a region is one large function, and
    /// Cranelift takes tens of milliseconds over the biggest (in `perf`, compiling lz77's
    /// regions on every run made it 2.8x slower under live JIT); a library's traces are
    /// the same every run, so their region's code comes from the code cache after the
    /// first.
    fn grow_region(&self, at: usize) -> Option<(Region, Vec<usize>)> {
        let func_index = self.traces[at].func_index;
        self.traces[at].anchor_pc?;
        if !self.traces[at].from_library {
            return None;
        }
        let mut members = vec![at];
        let mut position: HashMap<usize, u32> = HashMap::from([(at, 0)]);
        let mut links = BTreeMap::new();
        let mut budget = MAX_REGION_INSTS.checked_sub(self.traces[at].ir.as_ref()?.body.len())?;
        let mut next_member = 0;
        while let Some(&t) = members.get(next_member) {
            next_member += 1;
            let ir = self.traces[t].ir.clone()?;
            let expects = trace_code::exit_expects([&*ir], ir.exits().map(|e| (e.id, e)));
            for exit in ir.exits() {
                let place = Place {
                    func_index,
                    pc: exit.pc,
                    calls: (!exit.calls.is_empty()).then(|| Rc::from(exit.calls.as_slice())),
                    expect: expects.get(&exit.id).copied(),
                };
                let Some(k) = self.links.find(&place) else {
                    continue;
                };
                let links::Target::Trace(next) = self.links.target(k) else {
                    continue;
                };
                let next = *next as usize;
                let Some(candidate) = self.traces.get(next) else {
                    continue;
                };
                if next == t
                    || candidate.func_index != func_index
                    || candidate.detached
                    || !candidate.from_library
                    || !candidate.tree.region.is_empty()
                {
                    continue;
                }
                let to = match position.get(&next) {
                    Some(&m) => m,
                    None => {
                        let Some(body) = candidate.ir.as_ref().map(|ir| ir.body.len()) else {
                            continue;
                        };
                        if members.len() >= MAX_REGION_MEMBERS || body > budget {
                            continue;
                        }
                        budget -= body;
                        members.push(next);
                        position.insert(next, members.len() as u32 - 1);
                        members.len() as u32 - 1
                    }
                };
                links.insert((position[&t], exit.id), to);
            }
        }
        let entries: Vec<u32> = (0..members.len() as u32)
            .filter(|&m| {
                let t = &self.traces[members[m as usize]];
                t.root && t.anchor_pc.is_some()
            })
            .collect();
        if entries.len() < 2 {
            return None;
        }
        let region = Region {
            members: members
                .iter()
                .map(|&t| Some((**self.traces[t].ir.as_ref()?).clone()))
                .collect::<Option<_>>()?,
            links,
            entries,
        };
        Some((region, members))
    }

    /// Compiles `region` (whose members are the traces `members`) and puts an entry of it
    /// in each entry root's place, as a tree takes its root's; on this thread (a region is
    /// built rarely, and its roots run on meanwhile). A region that links what the current
    /// one does is not rebuilt; one that fails to build leaves its roots as they are.
    fn build_region(&mut self, region: Region, members: Vec<usize>) {
        let mut signature: Vec<(u32, u32, u32)> = region
            .links
            .iter()
            .map(|(&(from, id), &to)| {
                (
                    members[from as usize] as u32,
                    id,
                    members[to as usize] as u32,
                )
            })
            .collect();
        signature.sort_unstable();
        let roots: Vec<usize> = region
            .entries
            .iter()
            .map(|&m| members[m as usize])
            .collect();
        if roots
            .iter()
            .all(|&r| self.traces[r].tree.region == signature)
        {
            return;
        }
        let func_index = self.traces[roots[0]].func_index;
        let keys: Vec<(u32, u32)> = roots
            .iter()
            .map(|&r| {
                let offset = self
                    .by_key
                    .iter()
                    .find_map(|(&(f, a), &i)| (i == r && f == func_index).then_some(a))
                    .unwrap_or(0);
                (func_index, offset)
            })
            .collect();
        let from_library = members.iter().all(|&t| self.traces[t].from_library);
        let code = match TraceCode::build_region(&self.guest, &region, &keys) {
            Ok(code) => code,
            Err(_) => {
                for &r in &roots {
                    self.traces[r].tree.failed = true;
                }
                self.bump(|s| s.region_failures += 1);
                return;
            }
        };
        // Its roots are taken from now on: no other region takes them in, and they grow
        // none of their own.
        for &r in &roots {
            self.traces[r].tree.region = signature.clone();
        }
        let code_cache = self.code_cache_for(from_library);
        let looked_up = code_cache.is_some();
        // Code the code cache holds loads in about a millisecond: now, so the region runs
        // from the next entry on. A compile goes to the compile thread (on a machine's
        // first run it cost more than the region saved, on the interpreter's thread).
        let cached = code_cache
            .as_ref()
            .is_some_and(|c| c.holds(&self.engine, &code.module));
        let submitted = if cached {
            None
        } else {
            self.compiler()
                .and_then(|c| c.submit(code.module.clone(), code_cache))
        };
        if let Some(id) = submitted {
            for &r in &roots {
                self.traces[r].tree.building = true;
            }
            self.group_mut(func_index).compiling += 1;
            let members = members.len();
            self.in_flight.insert(
                id,
                InFlight::Region {
                    roots,
                    code,
                    members,
                    looked_up,
                },
            );
            return;
        }
        let started = Instant::now();
        let funcs = self.instantiate_with(&code, from_library);
        self.finish_region(&roots, &code, funcs, members.len(), started.elapsed());
    }

    /// Puts an entry of the region compiled from `code` (in `took`, its `members` traces)
    /// in the place of each of `roots`, as a tree takes its root's; a region that failed
    /// to compile leaves its roots as they are.
    fn finish_region(
        &mut self,
        roots: &[usize],
        code: &TraceCode,
        funcs: anyhow::Result<Vec<Func>>,
        members: usize,
        took: Duration,
    ) {
        let funcs = match funcs {
            Ok(funcs) => funcs,
            Err(_) => {
                for &r in roots {
                    self.traces[r].tree.failed = true;
                    self.traces[r].tree.building = false;
                }
                self.bump(|s| s.region_failures += 1);
                return;
            }
        };
        for (i, &r) in roots.iter().enumerate() {
            let (func_index, anchor_pc) = (self.traces[r].func_index, self.traces[r].anchor_pc);
            let entry = anchor_pc.and_then(|pc| self.links.find(&Place::at(func_index, pc)));
            let added = self.replace_root(r, &code.traces[i], funcs[i], entry);
            let tree = &mut self.traces[r].tree;
            tree.building = false;
            if added.is_err() {
                tree.failed = true;
                self.bump(|s| s.region_failures += 1);
                continue;
            }
            tree.stale = false;
            tree.builds += 1;
            tree.next_build = Some(Instant::now() + took * self.rebuild_ratio);
        }
        self.bump(|s| {
            s.regions += 1;
            s.region_members += members as u64;
        });
    }

    /// Puts root `at`'s tree `funcs` (compiled from `code` in `took`, inlining `inlined`,
    /// entered at link slot `entry`) in the root's place; a tree that failed to compile
    /// leaves the root as it is.
    fn finish_tree(
        &mut self,
        at: usize,
        code: &TraceCode,
        funcs: anyhow::Result<Vec<Func>>,
        inlined: Vec<(u32, Vec<u32>)>,
        entry: Option<u32>,
        took: Duration,
    ) {
        let added = funcs.and_then(|funcs| self.replace_root(at, &code.traces[0], funcs[0], entry));
        let state = &mut self.traces[at].tree;
        state.building = false;
        state.next_build = Some(Instant::now() + took * self.rebuild_ratio);
        match added {
            Ok(()) => {
                let sides: usize = inlined.iter().map(|(_, t)| t.len()).sum();
                state.inlined = inlined;
                self.bump(|s| {
                    s.trees += 1;
                    s.tree_sides += sides as u64;
                });
            }
            Err(_) => {
                state.failed = true;
                self.bump(|s| s.tree_failures += 1);
            }
        }
    }

    /// Makes `func` (what `meta` describes, entered at link slot `entry`) root `r`'s code,
    /// in its place, as a tree or a region's entry does: the root's IR, anchor pc, origin
    /// and tree state stay what trees and regions grow from.
    fn replace_root(
        &mut self,
        r: usize,
        meta: &TraceMeta,
        func: Func,
        entry: Option<u32>,
    ) -> anyhow::Result<()> {
        let tree = std::mem::take(&mut self.traces[r].tree);
        let (ir, anchor_pc, from_library, root) = (
            self.traces[r].ir.clone(),
            self.traces[r].anchor_pc,
            self.traces[r].from_library,
            self.traces[r].root,
        );
        // An entry trace's tree stays its entry trace: at its place, for the corpus, and
        // reading what it read (a tree also reads the slots it carries, only to write
        // them back unchanged or after a side trace wrote them).
        let (side_start, reads_end) = (self.traces[r].side_start.clone(), self.traces[r].reads_end);
        let added = self.add_function(r, meta, func, root, entry);
        let t = &mut self.traces[r];
        if added.is_ok() {
            t.ir = ir;
            t.anchor_pc = anchor_pc;
            t.from_library = from_library;
            if !root {
                t.side_start = side_start;
                t.reads_end = reads_end;
            }
        }
        t.tree = tree;
        added
    }

    /// Brings the links memory up to date with the host's links (growing it if they
    /// need more room); `false` if it cannot grow.
    fn flush_links(&mut self) -> bool {
        if !self.links.has_writes() {
            return true;
        }
        let have = self.links_memory.data_size(&self.store);
        let need = self.links.bytes_needed();
        if need > have {
            let pages = ((need - have) as u64).div_ceil(PAGE_BYTES);
            if self.links_memory.grow(&mut self.store, pages).is_err() {
                return false;
            }
            self.links_ptr = self.links_memory.data_ptr(&self.store);
        }
        self.links
            .flush(self.links_memory.data_mut(&mut self.store));
        true
    }
}

/// What the entry a drive began at allows where the interpreter goes on.
struct Room {
    /// The anchor's function and its code's length.
    func_index: u32,
    code_len: u32,
    /// The stack from the anchor's frame on, in slots, and the frames the interpreter
    /// allows on top of the anchor's (`TraceEntry::call_room`).
    frame_slots: usize,
    call_room: usize,
}

impl Room {
    /// Checks that the interpreter may go on at `pc` inside `calls` (outermost first,
    /// bases from the anchor's frame): each is the call its caller's code makes, and
    /// their frames fit the stack and the call depth. The driver checked both before
    /// each call it made, so a failure is a bug in the tier, reported as a host trap.
    fn check(&self, module: &Module, calls: &[ir::InlinedCall], pc: u32) -> Result<(), TrapKind> {
        let end = module
            .check_place(self.func_index, pc, calls)
            .map_err(|why| {
                TrapKind::Host(format!("trace code left inside calls it cannot: {why}"))
            })?;
        if end as usize > self.frame_slots || calls.len() > self.call_room {
            return Err(TrapKind::Host(format!(
                "trace code left inside {} calls whose frames end at slot {end}: past the \
                 stack ({} slots, {} more calls)",
                calls.len(),
                self.frame_slots,
                self.call_room
            )));
        }
        Ok(())
    }
}

/// Whether side trace `trace`, recorded from `pc` inside `calls`, goes anywhere: one that
/// ends where it starts, having done nothing, would be entered again at once.
fn makes_progress(trace: &RecordedTrace, pc: u32, calls: &[ir::InlinedCall]) -> bool {
    !(trace.trace.body.is_empty()
        && matches!(&trace.trace.end, ir::End::Exit(e) if e.pc == pc && e.calls == calls))
}

/// Runs the driver from trace `trace` on the interpreter's frame where it is, `frame_at`
/// bytes into the frame memory at `frame_memory` (the value stack's bytes; the caller
/// holds the frame's slots borrowed for the drive). Sets the globals the function's traces touch
/// (`group`), drives, and copies the globals back (at a trap too: its effects are
/// visible). Returns the link slot the chain ended at, or the guest trap.
///
/// Trace code writes the iteration word just below its frame (`emit::abi`): on the stack's
/// leading word or on the last slot of the frame below, which is saved here and put back.
fn drive(
    store: &mut wasmtime::Store<()>,
    driver: Func,
    trace: u32,
    group: &Group,
    frame_memory: *mut u8,
    frame_at: usize,
    mut globals: trace_capture::GlobalsMut<'_>,
) -> Result<u32, TrapKind> {
    for &(index, global, ty) in &group.globals {
        if let Some(raw) = globals.get(index) {
            let _ = global.set(&mut *store, from_raw(ty, raw));
        }
    }
    // SAFETY: `frame_at >= LEADING_BYTES >= ITERATION_WORD_BYTES` (checked at compile
    // time), so the word is inside the stack's bytes, which live as long as the tier; it is
    // the leading word or a slot of a frame below, which nothing else touches during the
    // drive.
    let word = unsafe { frame_memory.add(frame_at - ITERATION_WORD_BYTES as usize) };
    // SAFETY: as above; unaligned reads and writes need no alignment.
    let below = unsafe { word.cast::<u64>().read_unaligned() };
    let mut params_and_result = [ValRaw::i32(frame_at as i32), ValRaw::i32(trace as i32)];
    // SAFETY: the driver has type `(i32, i32) -> i32` (checked by `get_typed_func` when
    // the tier was made) and belongs to this store; the buffer holds two parameters and
    // one result. Trace code writes the frame in place through the frame memory while the
    // call runs; the caller's borrow of it is not used until it has returned.
    let result = unsafe { driver.call_unchecked(&mut *store, &mut params_and_result) }
        .map(|()| params_and_result[0].get_i32() as u32);
    // SAFETY: as above.
    unsafe { word.cast::<u64>().write_unaligned(below) };
    for &(index, global, _) in &group.globals {
        globals.set(index, to_raw(&global.get(&mut *store)));
    }
    result.map_err(|e| trap_kind(&e))
}
