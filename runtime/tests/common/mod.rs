//! What the runtime's test binaries share.

use runtime::{TierStats, WasmtimeTier};
use trace_capture::{InstanceId, Linker, Module, RecordConfig, Store};

/// Runs export `run` of `wat` with live JIT on the tier `make` builds, recording at
/// `hot_threshold`; checks the result is the interpreter's (`what` names the run in the
/// message) and returns the tier's counters.
pub fn run_live_with(
    wat: &str,
    hot_threshold: u64,
    what: &str,
    make: impl FnOnce(&Store, InstanceId, &Module) -> WasmtimeTier,
) -> TierStats {
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let expected = {
        let mut store = Store::new();
        let instance = Linker::new().instantiate(&mut store, &module).unwrap();
        store.call_export(instance, "run", &[]).unwrap()
    };
    let mut store = Store::new();
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    store.enable_recording(RecordConfig {
        hot_threshold,
        ..RecordConfig::default()
    });
    let mut tier = make(&store, instance, &module);
    tier.enable_live_jit();
    let stats = tier.stats_handle();
    store.set_tier(Box::new(tier));
    let got = store.call_export(instance, "run", &[]).unwrap();
    assert_eq!(got, expected, "{what}: {:?}", stats.get());
    stats.get()
}
