//! The cache library: what the writer writes the reader reads back, and every kind of bad
//! cache is refused with an error that names the problem, never a panic.

use std::collections::BTreeMap;

use emit::cache::{
    assemble_unchecked, CacheError, CacheLibrary, CacheWriteError, CacheWriter, Manifest,
    ProofVerdict, TraceRecord, FORMAT_VERSION, KILN_VERSION, MANIFEST_SECTION,
};
use emit::{EmitKind, GlobalInfo, GuestInfo, ModuleBuilder};
use ir::{InlinedCall, Selector, SideStart, Type};
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemoryType, Module, TypeSection, ValType,
};

/// A loop over slot 0 with one guard.
const LOOP: &str = "trace locals=1
  in  v0:i32 = slot 0
  v1:i32 = i32.add v0 1
  v2:i32 = i32.lt_u v1 100
  guard v2 else exit 0 pc=3 @0x9 [s0=v1]
  loop [s0=v1]";

/// Reads two globals and writes four; loops.
const GLOBALS: &str = "trace locals=1
  in  v0:i32 = slot 0
  in  v1:i32 = global 0
  in  v2:i64 = global 3
  v3:i32 = i32.add v1 v0
  global.set 0 v3
  v4:i64 = i64.extend_i32_u v3
  global.set 3 v4
  global.set 7 12
  global.set 8 0xffffffff
  v5:i32 = i32.ne v3 0
  guard v5 else exit 4 pc=17 @0x20 [s0=v3 s2=v0]
  loop [s0=v3]";

/// Leaves at its end, with two guards before.
const EXITS: &str = "trace locals=2
  in  v0:i32 = slot 1
  in  v1:i64 = slot 3
  v2:i32 = i32.eqz v0
  guard v2 else exit 2 pc=40 @0x31 [s1=v0]
  v3:i64 = i64.add v1 7
  v4:i32 = i64.eqz v3
  guard !v4 else exit 1 pc=41 @0x33 [s3=v3]
  exit 3 pc=50 @0x40 [s0=v0 s3=v3]";

const APP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OTHER_APP: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn trace(text: &str) -> ir::Trace {
    ir::text::parse(text).expect("the trace parses")
}

fn guest() -> GuestInfo {
    let global = |ty, mutable| GlobalInfo { ty, mutable };
    GuestInfo {
        memory_min_pages: 1,
        memory_max_pages: None,
        globals: BTreeMap::from([
            (0, global(Type::I32, true)),
            (3, global(Type::I64, true)),
            (7, global(Type::I32, true)),
            (8, global(Type::I64, true)),
        ]),
    }
}

fn record(trace: &ir::Trace, func_index: u32, verdict: ProofVerdict) -> TraceRecord {
    let proven = verdict.is_proven();
    TraceRecord {
        func_index,
        anchor_offset: 0x100 + func_index,
        side: None,
        content_hash: ir::hash::content_hash(trace),
        cost_before: 20,
        cost_after: if proven { 12 } else { 20 },
        verdict,
        solver: if proven {
            "Z3 4.8.12.0".to_string()
        } else {
            String::new()
        },
    }
}

/// The place of `small_cache`'s side trace (EXITS, of function `func_index`): inside a
/// call, after a guard that expected false, at a `br_table`'s last arm.
fn side_start(func_index: u32) -> SideStart {
    SideStart {
        func_index,
        pc: 38,
        calls: vec![InlinedCall {
            func: 9,
            base: 4,
            return_pc: 12,
        }],
        expect: Some(false),
        selector: Some(Selector {
            index_slot: 1,
            arms: 3,
            arm: 2,
        }),
    }
}

fn unproven() -> ProofVerdict {
    ProofVerdict::Unproven {
        reason: "saturation found nothing cheaper; the recorded trace ships as it was".into(),
    }
}

/// A small cache of the three traces (one proven) and its writer's manifest.
fn small_cache() -> (Vec<u8>, Manifest) {
    let mut writer = CacheWriter::new(guest(), APP).expect("writer");
    for (i, (text, verdict)) in [
        (LOOP, ProofVerdict::Proven),
        (GLOBALS, unproven()),
        (EXITS, unproven()),
    ]
    .into_iter()
    .enumerate()
    {
        let t = trace(text);
        let mut record = record(&t, i as u32, verdict);
        if text == EXITS {
            record.side = Some(side_start(i as u32));
        }
        let index = writer.add(&t, record).expect("add");
        assert_eq!(index, i as u32);
    }
    let bytes = writer.finish().expect("the cache is written");
    (bytes, writer.manifest().clone())
}

/// The module of a cache (the file without its manifest section), for re-assembly.
fn module_of(cache: &[u8]) -> Vec<u8> {
    let name = MANIFEST_SECTION.as_bytes();
    let at = cache
        .windows(name.len())
        .rposition(|w| w == name)
        .expect("the manifest's name");
    // id byte, one-byte... section size LEB (small caches: 2 bytes), name length byte.
    let mut start = at - 1; // the name's length
    start -= 1; // at least one size byte
    while start > 0 && cache[start - 1] & 0x80 != 0 {
        start -= 1;
    }
    assert_eq!(cache[start - 1], 0, "a custom section's id");
    cache[..start - 1].to_vec()
}

/// The file offset of the manifest's first byte (its format version).
fn manifest_offset(cache: &[u8]) -> usize {
    let name = MANIFEST_SECTION.as_bytes();
    cache.windows(name.len()).rposition(|w| w == name).unwrap() + name.len()
}

/// Reads `bytes` for `APP` and checks the error is the one `expected` matches and its
/// message says each of `words`.
fn check_refused(bytes: &[u8], expected: impl Fn(&CacheError) -> bool, words: &[&str]) {
    match CacheLibrary::read(bytes, APP) {
        Ok(_) => panic!("a bad cache was accepted"),
        Err(e) => {
            assert!(expected(&e), "unexpected error: {e:?}");
            let message = e.to_string();
            for word in words {
                assert!(message.contains(word), "{message:?} lacks {word:?}");
            }
        }
    }
}

#[test]
fn what_is_written_reads_back() {
    let (bytes, manifest) = small_cache();
    let library = CacheLibrary::read(&bytes, APP).expect("the cache reads back");
    assert_eq!(library.manifest(), &manifest);
    assert_eq!(library.module_bytes(), &bytes[..]);
    emit::validate(library.module_bytes()).expect("the module validates");
    assert_eq!(manifest.format_version, FORMAT_VERSION);
    assert_eq!(manifest.kiln_version, KILN_VERSION);
    assert_eq!(manifest.app_hash, APP);

    // Each entry's maps are the trace's, as the runtime computes them from a trace.
    let traces = [trace(LOOP), trace(GLOBALS), trace(EXITS)];
    for (t, entry) in traces.iter().zip(library.traces()) {
        let exits: BTreeMap<u32, u32> = t.exits().map(|e| (e.id, e.pc)).collect();
        assert_eq!(entry.exit_pcs(), exits);
        assert_eq!(entry.content_hash, ir::hash::content_hash(t));
    }
    let [looping, globals, exits] = library.traces() else {
        panic!("three traces")
    };
    assert_eq!(looping.emission, EmitKind::Optimized);
    assert_eq!((looping.cost_before, looping.cost_after), (20, 12));
    assert_eq!(looping.solver, "Z3 4.8.12.0");
    assert_eq!(looping.carried, [0]);
    assert_eq!(looping.slots_written(), BTreeMap::from([(0, vec![0])]));
    assert_eq!(globals.emission, EmitKind::Naive);
    assert_eq!(globals.globals_written, [0, 3, 7, 8]);
    assert_eq!(
        globals.globals_read(),
        BTreeMap::from([(0, Type::I32), (3, Type::I64)])
    );
    assert_eq!(globals.globals_touched(), [0, 3, 7, 8]);
    assert_eq!(globals.slots_written(), BTreeMap::from([(4, vec![0, 2])]));
    assert_eq!(exits.slots_read(), [1, 3]);
    assert_eq!(
        exits.slots_written(),
        BTreeMap::from([(1, vec![3]), (2, vec![1]), (3, vec![0, 3])])
    );
    assert!(exits.carried.is_empty());
    assert_eq!((&looping.side, &globals.side), (&None, &None));
    assert_eq!(exits.side, Some(side_start(2)));

    // The same bytes from another writer run: the format is deterministic.
    assert_eq!(small_cache().0, bytes);
}

#[test]
fn an_empty_cache_reads_back() {
    let bytes = CacheWriter::new(guest(), APP).unwrap().finish().unwrap();
    let library = CacheLibrary::read(&bytes, APP).expect("reads");
    assert!(library.traces().is_empty());
}

#[test]
fn a_cache_for_another_app_is_refused() {
    let (bytes, _) = small_cache();
    match CacheLibrary::read(&bytes, OTHER_APP) {
        Err(CacheError::AppHash { found, expected }) => {
            assert_eq!((found.as_str(), expected.as_str()), (APP, OTHER_APP));
        }
        other => panic!("expected an app hash error, got {other:?}"),
    }
    let message = CacheLibrary::read(&bytes, OTHER_APP)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("another app") && message.contains(OTHER_APP),
        "{message}"
    );
    // The hash is compared whatever its case.
    CacheLibrary::read(&bytes, &APP.to_uppercase()).expect("same app");
}

#[test]
fn a_cache_of_another_kiln_or_format_version_is_refused() {
    let (bytes, mut manifest) = small_cache();
    manifest.kiln_version = "0.0.1-elsewhere".to_string();
    let other_kiln = assemble_unchecked(&module_of(&bytes), &manifest);
    check_refused(
        &other_kiln,
        |e| matches!(e, CacheError::KilnVersion { found, .. } if found == "0.0.1-elsewhere"),
        &["kiln 0.0.1-elsewhere", KILN_VERSION],
    );
    // It can still be looked at.
    let seen = CacheLibrary::read_for_inspection(&other_kiln).expect("inspectable");
    assert_eq!(seen.manifest().kiln_version, "0.0.1-elsewhere");

    let mut other_format = bytes.clone();
    let at = manifest_offset(&bytes);
    other_format[at..at + 4].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    check_refused(
        &other_format,
        |e| {
            *e == CacheError::FormatVersion {
                found: FORMAT_VERSION + 1,
                expected: FORMAT_VERSION,
            }
        },
        &["format version"],
    );
}

/// A cache read before ([`CacheLibrary::read_known`]) reads back the same, and its form
/// and origin are still checked: another app, another kiln, a damaged byte.
#[test]
fn a_known_cache_reads_the_same_and_its_origin_is_still_checked() {
    let (bytes, manifest) = small_cache();
    let known = CacheLibrary::read_known(&bytes, APP).expect("reads");
    assert_eq!(known, CacheLibrary::read(&bytes, APP).unwrap());
    assert_eq!(known.manifest(), &manifest);

    assert!(matches!(
        CacheLibrary::read_known(&bytes, OTHER_APP),
        Err(CacheError::AppHash { .. })
    ));
    let mut other = manifest.clone();
    other.kiln_version = "0.0.1-elsewhere".to_string();
    let other_kiln = assemble_unchecked(&module_of(&bytes), &other);
    assert!(matches!(
        CacheLibrary::read_known(&other_kiln, APP),
        Err(CacheError::KilnVersion { .. })
    ));
    for at in [
        bytes.len() / 4,
        manifest_offset(&bytes) + 8,
        bytes.len() - 1,
    ] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        assert!(
            matches!(
                CacheLibrary::read_known(&flipped, APP),
                Err(CacheError::Checksum { .. })
            ),
            "byte {at} flipped"
        );
    }
    // Its traces' IR is still decoded, its form checked: a resealed file whose last
    // trace's IR lost its magic bytes is refused.
    let ir_magic = bytes.windows(4).rposition(|w| w == b"KLNT").unwrap();
    let mut cut = bytes.clone();
    cut[ir_magic] = b'X';
    assert!(matches!(
        CacheLibrary::read_known(&resealed(cut), APP),
        Err(CacheError::BadManifest { .. })
    ));
}

#[test]
fn every_truncation_is_refused() {
    let (bytes, _) = small_cache();
    let module_len = module_of(&bytes).len();
    for len in 0..bytes.len() {
        match CacheLibrary::read(&bytes[..len], APP) {
            Ok(_) => panic!("the first {len} of {} bytes were accepted", bytes.len()),
            Err(CacheError::NoManifest) => assert!(
                len <= module_len,
                "{len} bytes: the manifest is there, if cut"
            ),
            Err(_) => {}
        }
    }
    // Cut exactly before the manifest: a valid module, but no cache.
    check_refused(
        &bytes[..module_len],
        |e| *e == CacheError::NoManifest,
        &["kiln.manifest"],
    );
    // Bytes after the manifest.
    let mut longer = bytes.clone();
    longer.push(0);
    check_refused(
        &longer,
        |e| matches!(e, CacheError::Malformed { .. }),
        &["offset"],
    );
}

#[test]
fn flipped_bytes_are_refused_or_mean_the_same() {
    let (bytes, _) = small_cache();
    let original = CacheLibrary::read(&bytes, APP).unwrap();
    let mut refused = 0;
    let mut flips = 0;
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            flips += 1;
            match CacheLibrary::read(&damaged, APP) {
                Err(_) => refused += 1,
                Ok(library) => assert_eq!(
                    library.manifest(),
                    original.manifest(),
                    "a flip at {at:#x} (mask {mask:#x}) changed the manifest"
                ),
            }
        }
    }
    assert!(flips >= 2000, "only {flips} flips");
    // The checksum covers every byte, so in fact no flip gets through.
    assert_eq!(refused, flips, "flips accepted");
}

/// The checksum stops the flips above before the manifest is decoded; here they reach
/// the decoder and the module checks, resealed as a forger would: never a panic.
#[test]
fn resealed_flips_in_the_manifest_never_panic() {
    let (bytes, _) = small_cache();
    let original = CacheLibrary::read(&bytes, APP).unwrap();
    let (mut refused, mut read) = (0, 0);
    for at in manifest_offset(&bytes)..bytes.len() - 32 {
        for mask in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            match CacheLibrary::read(&resealed(damaged), APP) {
                Err(_) => refused += 1,
                Ok(library) => {
                    // A cost, hash or anchor changed: read, but not as the original.
                    assert_ne!(library.manifest(), original.manifest());
                    read += 1;
                }
            }
        }
    }
    assert!(refused > 0 && read > 0, "{refused} refused, {read} read");
}

/// Random manifest bodies after a valid module, with a valid checksum: the decoder
/// refuses them with an error, never a panic or a huge allocation.
#[test]
fn random_manifests_are_refused_without_panic() {
    let (bytes, _) = small_cache();
    let module = module_of(&bytes);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3000 {
        let len = (next() % 300) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && body.len() >= 4 {
            // Half of them pass the version check and reach the decoder.
            body[..4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        }
        let file = with_manifest_section(&module, &body);
        assert!(CacheLibrary::read(&file, APP).is_err(), "round {round}");
    }
}

/// `module` followed by a `kiln.manifest` section holding `body` and a valid checksum.
fn with_manifest_section(module: &[u8], body: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let name = MANIFEST_SECTION.as_bytes();
    let mut file = module.to_vec();
    file.push(0);
    let mut size = (1 + name.len() + body.len() + 32) as u64;
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        file.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    file.push(name.len() as u8);
    file.extend(name);
    file.extend(body);
    let checksum = sha2::Sha256::digest(&file);
    file.extend(checksum);
    file
}

#[test]
fn a_damaged_checksum_names_its_offset() {
    let (mut bytes, _) = small_cache();
    let at = bytes.len() - 5;
    bytes[at] ^= 1;
    check_refused(
        &bytes,
        |e| {
            *e == CacheError::Checksum {
                offset: bytes.len() - 32,
            }
        },
        &["checksum", "altered"],
    );
}

/// `cache` with its checksum recomputed, as a writer that meant harm would.
fn resealed(mut cache: Vec<u8>) -> Vec<u8> {
    use sha2::Digest;
    let at = cache.len() - 32;
    let checksum = sha2::Sha256::digest(&cache[..at]);
    cache[at..].copy_from_slice(&checksum);
    cache
}

#[test]
fn a_manifest_off_its_layout_is_refused_at_the_offset() {
    let (bytes, _) = small_cache();
    let version = manifest_offset(&bytes) + 4;
    let count = version + 4 + KILN_VERSION.len() + 32;
    // Trace 0: function, anchor, start (a loop: one byte), content hash, emission.
    let start = count + 4 + 4 + 4;
    let emission = start + 1 + 32;

    let mut bad_start = bytes.clone();
    bad_start[start] = 7;
    check_refused(
        &resealed(bad_start),
        |e| matches!(e, CacheError::BadManifest { offset, .. } if *offset == start),
        &["where the trace starts (0 its loop anchor, 1 a side trace's place), found 7"],
    );

    let mut bad_emission = bytes.clone();
    bad_emission[emission] = 7;
    check_refused(
        &resealed(bad_emission),
        |e| matches!(e, CacheError::BadManifest { offset, .. } if *offset == emission),
        &["an emission (0 naive, 1 optimized), found 7"],
    );

    let mut huge_count = bytes.clone();
    huge_count[count..count + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    check_refused(
        &resealed(huge_count),
        |e| matches!(e, CacheError::BadManifest { offset, .. } if *offset == count),
        &["the trace count at most 65536, found 4294967295"],
    );

    let mut fewer = bytes.clone();
    fewer[count..count + 4].copy_from_slice(&2u32.to_le_bytes());
    check_refused(
        &resealed(fewer),
        |e| matches!(e, CacheError::BadManifest { .. }),
        &["the checksum right after the last trace"],
    );

    let mut more = bytes;
    more[count..count + 4].copy_from_slice(&4u32.to_le_bytes());
    check_refused(
        &resealed(more),
        |e| matches!(e, CacheError::BadManifest { .. }),
        &["but the manifest ends"],
    );
}

#[test]
fn a_manifest_entry_without_its_export_is_refused() {
    let (bytes, mut manifest) = small_cache();
    let mut extra = manifest.traces[0].clone();
    extra.anchor_offset = 0x999;
    manifest.traces.push(extra);
    let forged = assemble_unchecked(&module_of(&bytes), &manifest);
    check_refused(
        &forged,
        |e| *e == CacheError::EntryWithoutExport { trace: 3 },
        &["trace 3", "trace3"],
    );
}

#[test]
fn an_export_without_its_manifest_entry_is_refused() {
    let (bytes, mut manifest) = small_cache();
    manifest.traces.pop();
    let forged = assemble_unchecked(&module_of(&bytes), &manifest);
    check_refused(
        &forged,
        |e| {
            *e == CacheError::ExportWithoutEntry {
                name: "trace2".into(),
            }
        },
        &["trace2", "no manifest entry"],
    );
}

#[test]
fn a_trace_function_of_another_type_is_refused() {
    let (_, mut manifest) = small_cache();
    manifest.traces.truncate(1);
    manifest.traces[0].carried.clear();
    manifest.traces[0].exits[0].slots.clear();
    manifest.traces[0].inputs.clear();
    let module = hand_module(
        ValType::I64,
        &|f| {
            f.instructions().i64_const(0).end();
        },
        false,
        None,
    );
    check_refused(
        &assemble_unchecked(&module, &manifest),
        |e| matches!(e, CacheError::WrongFunctionType { trace: 0, found } if found == "(i32) -> (i64)"),
        &["trace 0", "(i32) -> (i64)", "expected (i32) -> (i32)"],
    );
}

#[test]
fn a_manifest_that_disagrees_with_the_imports_is_refused() {
    let (bytes, manifest) = small_cache();
    let module = module_of(&bytes);

    // Trace 0 claims to read a global the module does not import.
    let mut reads_global = manifest.clone();
    reads_global.traces[0].inputs.push(emit::cache::EntryInput {
        source: ir::Source::Global(5),
        ty: Type::F64,
    });
    check_refused(
        &assemble_unchecked(&module, &reads_global),
        |e| matches!(e, CacheError::Disagrees { trace: Some(0), .. }),
        &["global 5", "does not import"],
    );

    // Trace 1 claims to read global 3 as an i32; the module imports an i64.
    let mut wrong_type = manifest.clone();
    let input = wrong_type.traces[1]
        .inputs
        .iter_mut()
        .find(|i| i.source == ir::Source::Global(3))
        .unwrap();
    input.ty = Type::I32;
    check_refused(
        &assemble_unchecked(&module, &wrong_type),
        |e| matches!(e, CacheError::Disagrees { trace: Some(1), .. }),
        &["global 3 as i32", "as i64"],
    );

    // No trace touches global 8 any more, but the module imports it.
    let mut unused = manifest.clone();
    unused.traces[1].globals_written.retain(|&g| g != 8);
    check_refused(
        &assemble_unchecked(&module, &unused),
        |e| matches!(e, CacheError::BadImport { import, .. } if import.contains("global8")),
        &["global8", "no trace"],
    );

    // Trace 2 claims a slot beyond the frame memory the module imports.
    let mut far_slot = manifest;
    far_slot.traces[2].exits[0].slots.push(1 << 20);
    check_refused(
        &assemble_unchecked(&module, &far_slot),
        |e| matches!(e, CacheError::Disagrees { trace: Some(2), .. }),
        &["frame slot 1048576", "pages"],
    );
}

#[test]
fn a_manifest_breaking_its_rules_is_refused() {
    let (bytes, manifest) = small_cache();
    let module = module_of(&bytes);

    let mut optimized_unproven = manifest.clone();
    optimized_unproven.traces[0].verdict = unproven();
    check_refused(
        &assemble_unchecked(&module, &optimized_unproven),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(0), .. }),
        &["optimized code with verdict unproven"],
    );

    let mut unsorted_exits = manifest.clone();
    unsorted_exits.traces[2].exits.swap(0, 1);
    check_refused(
        &assemble_unchecked(&module, &unsorted_exits),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(2), .. }),
        &["exit ids are not strictly increasing"],
    );

    let mut bad_arm = manifest.clone();
    if let Some(side) = &mut bad_arm.traces[2].side {
        side.selector = Some(Selector {
            index_slot: 1,
            arms: 2,
            arm: 2,
        });
    }
    check_refused(
        &assemble_unchecked(&module, &bad_arm),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(2), .. }),
        &["arm 2 of a br_table of 2 arms"],
    );

    // A side trace must end in an exit: trace 0 loops.
    let mut looping_side = manifest.clone();
    looping_side.traces[0].side = Some(side_start(0));
    check_refused(
        &assemble_unchecked(&module, &looping_side),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(0), .. }),
        &["it is a side trace, yet it loops"],
    );

    // Two side traces for one place and arm (trace 1 given trace 2's place).
    let mut same_place = manifest.clone();
    same_place.traces[1].shipped = same_place.traces[2].shipped.clone();
    same_place.traces[1].func_index = 2;
    same_place.traces[1].side = Some(side_start(2));
    check_refused(
        &assemble_unchecked(&module, &same_place),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(2), .. }),
        &["starts where trace 1 does", "one side trace per place"],
    );

    let mut same_anchor = manifest;
    same_anchor.traces[1].func_index = same_anchor.traces[0].func_index;
    same_anchor.traces[1].anchor_offset = same_anchor.traces[0].anchor_offset;
    check_refused(
        &assemble_unchecked(&module, &same_anchor),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(1), .. }),
        &["trace 0's too"],
    );
}

#[test]
fn a_module_that_fails_validation_is_refused() {
    let (_, mut manifest) = small_cache();
    manifest.traces.truncate(1);
    // Declared to return an i32, the body leaves an i64.
    let module = hand_module(
        ValType::I32,
        &|f| {
            f.instructions().i64_const(0).end();
        },
        false,
        None,
    );
    check_refused(
        &assemble_unchecked(&module, &manifest),
        |e| matches!(e, CacheError::InvalidModule(_)),
        &["fails validation", "type mismatch"],
    );
}

#[test]
fn a_module_with_data_segments_is_refused() {
    let (_, mut manifest) = small_cache();
    manifest.traces.truncate(1);
    manifest.traces[0].carried.clear();
    manifest.traces[0].exits[0].slots.clear();
    manifest.traces[0].inputs.clear();
    // Instantiating it would write the guest's memory.
    let module = hand_module(
        ValType::I32,
        &|f| {
            f.instructions().i32_const(0).end();
        },
        true,
        None,
    );
    check_refused(
        &assemble_unchecked(&module, &manifest),
        |e| matches!(e, CacheError::UnexpectedSection { section, .. } if section == "data section"),
        &["data section", "offset"],
    );
}

#[test]
fn the_writer_refuses_what_the_reader_would() {
    let t = trace(LOOP);
    let mut writer = CacheWriter::new(guest(), APP).unwrap();
    writer.add(&t, record(&t, 0, unproven())).unwrap();
    // The same anchor twice.
    writer.add(&t, record(&t, 0, unproven())).unwrap();
    assert!(matches!(
        writer.finish(),
        Err(CacheWriteError::Rule { trace: Some(1), .. })
    ));
    // An optimized trace dearer than the recorded one.
    let mut writer = CacheWriter::new(guest(), APP).unwrap();
    let mut dear = record(&t, 0, ProofVerdict::Proven);
    dear.cost_after = 99;
    assert!(matches!(
        writer.add(&t, dear),
        Err(CacheWriteError::Rule { trace: Some(0), .. })
    ));
    assert!(writer.is_empty(), "a refused trace is not added");
    assert!(matches!(
        CacheWriter::new(guest(), "not a hash"),
        Err(CacheWriteError::Rule { trace: None, .. })
    ));
}

#[test]
fn garbage_is_refused() {
    for bytes in [&b""[..], b"\0asm", b"hello, world", &[0xff; 64]] {
        assert!(CacheLibrary::read(bytes, APP).is_err());
    }
    // A module that is not a cache.
    let module = ModuleBuilder::new(guest()).unwrap().finish().unwrap();
    check_refused(
        &module,
        |e| *e == CacheError::NoManifest,
        &["not a kiln cache"],
    );
}

/// A module with the ABI's two memory imports and one function `trace0` of type
/// `(i32) -> (result)` with the body `body` writes; with `data`, an active data segment
/// on the guest memory.
/// A one-trace module written by hand: `trace0` returns `result`, with `body`; data
/// segments if `data`; `global0` imported from the guest with type `global`, if given.
fn hand_module(
    result: ValType,
    body: &dyn Fn(&mut Function),
    data: bool,
    global: Option<wasm_encoder::GlobalType>,
) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [result]);
    module.section(&types);
    let memory = MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    };
    let mut imports = ImportSection::new();
    imports.import("guest", "memory", EntityType::Memory(memory));
    imports.import("kiln", "frame", EntityType::Memory(memory));
    if let Some(global) = global {
        imports.import("guest", "global0", EntityType::Global(global));
    }
    module.section(&imports);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut exports = ExportSection::new();
    exports.export("trace0", ExportKind::Func, 0);
    module.section(&exports);
    let mut code = CodeSection::new();
    let mut function = Function::new([]);
    body(&mut function);
    code.function(&function);
    module.section(&code);
    if data {
        let mut segments = DataSection::new();
        segments.active(0, &ConstExpr::i32_const(0), b"boo".iter().copied());
        module.section(&segments);
    }
    module.finish()
}

#[test]
fn a_shipped_trace_that_disagrees_with_its_entry_or_its_code_is_refused() {
    let (bytes, manifest) = small_cache();
    let module = module_of(&bytes);

    // Trace 0's IR exits at pc 4, its exit map says 3.
    let mut other_maps = manifest.clone();
    other_maps.traces[0].shipped = trace(&LOOP.replace("pc=3", "pc=4"));
    check_refused(
        &assemble_unchecked(&module, &other_maps),
        |e| matches!(e, CacheError::Disagrees { trace: Some(0), .. }),
        &["trace 0", "maps disagree with its trace"],
    );

    // Same maps, another bound: the code is not what the trace emits.
    let mut other_code = manifest.clone();
    other_code.traces[0].shipped = trace(&LOOP.replace("100", "101"));
    check_refused(
        &assemble_unchecked(&module, &other_code),
        |e| matches!(e, CacheError::Disagrees { trace: Some(0), .. }),
        &["trace 0", "is not what its trace emits", "offset"],
    );

    // Trace 1 ships trace 0's IR: its maps disagree.
    let mut swapped = manifest;
    swapped.traces[1].shipped = swapped.traces[0].shipped.clone();
    check_refused(
        &assemble_unchecked(&module, &swapped),
        |e| matches!(e, CacheError::Disagrees { trace: Some(1), .. }),
        &["trace 1", "maps disagree"],
    );
}

#[test]
fn a_damaged_trace_ir_is_refused_at_its_offset() {
    let (bytes, manifest) = small_cache();
    let module = module_of(&bytes);
    let cache = assemble_unchecked(&module, &manifest);
    // The first trace's IR starts with ir's binary magic; damage it and reseal.
    let magic = ir::binary::MAGIC;
    let at = cache
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("the IR's magic");
    let mut damaged = cache[..cache.len() - 32].to_vec();
    damaged[at] ^= 0xff;
    let checksum = {
        use sha2::Digest;
        sha2::Sha256::digest(&damaged)
    };
    damaged.extend(checksum);
    check_refused(
        &damaged,
        |e| matches!(e, CacheError::BadManifest { offset, .. } if *offset == at),
        &["the trace's IR in ir's binary form"],
    );
}

#[test]
fn a_trace_that_sets_a_global_imported_as_a_reference_is_refused() {
    // The manifest: one trace setting global 0, written for an i32 global.
    let sets = trace(
        "trace locals=1
  global.set 0 1
  exit 0 pc=3 @0x9 []",
    );
    let mut writer = CacheWriter::new(guest(), APP).unwrap();
    writer.add(&sets, record(&sets, 0, unproven())).unwrap();
    writer.finish().unwrap();
    let manifest = writer.manifest().clone();
    // The module: the same shape, but global 0 imported as a mutable funcref.
    let module = hand_module(
        ValType::I32,
        &|f| {
            f.instructions().i32_const(0).end();
        },
        false,
        Some(wasm_encoder::GlobalType {
            val_type: ValType::FUNCREF,
            mutable: true,
            shared: false,
        }),
    );
    check_refused(
        &assemble_unchecked(&module, &manifest),
        |e| matches!(e, CacheError::Disagrees { trace: Some(0), .. }),
        &["trace 0"],
    );
}

/// Side traces at one place: one without a `br_table` arm, or one per arm of one table
/// (same index slot and arm count). Anything else is two codes for one place, which the
/// runtime could not link, so the writer and the reader refuse it.
#[test]
fn side_traces_share_a_place_only_as_arms_of_one_table() {
    let exits = trace(EXITS);
    let with_arm = |arm: u32, arms: u32| {
        let mut start = side_start(2);
        start.selector = Some(Selector {
            index_slot: 1,
            arms,
            arm,
        });
        start
    };
    let write = |starts: &[SideStart]| {
        let mut writer = CacheWriter::new(guest(), APP).unwrap();
        for start in starts {
            let mut record = record(&exits, 2, unproven());
            record.side = Some(start.clone());
            writer.add(&exits, record).unwrap();
        }
        writer.finish()
    };
    let arms = write(&[with_arm(0, 3), with_arm(2, 3)]).expect("two arms of one table");
    let library = CacheLibrary::read(&arms, APP).expect("reads back");
    assert_eq!(library.traces().len(), 2);

    let mut no_arm = side_start(2);
    no_arm.selector = None;
    for (starts, why) in [
        (vec![with_arm(1, 3), with_arm(1, 3)], "the same arm twice"),
        (vec![with_arm(0, 3), with_arm(1, 2)], "two tables"),
        (vec![no_arm.clone(), with_arm(0, 3)], "a table and no table"),
        (vec![no_arm.clone(), no_arm], "no table twice"),
    ] {
        match write(&starts) {
            Err(CacheWriteError::Rule {
                trace: Some(1),
                problem,
            }) => assert!(
                problem.contains("one side trace per place, or per arm of one br_table"),
                "{why}: {problem}"
            ),
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[test]
fn a_side_traces_place_off_its_layout_is_refused_at_the_offset() {
    let exits = trace(EXITS);
    let mut writer = CacheWriter::new(guest(), APP).unwrap();
    let mut record = record(&exits, 2, unproven());
    record.side = Some(side_start(2));
    writer.add(&exits, record).unwrap();
    let bytes = writer.finish().unwrap();

    let version = manifest_offset(&bytes) + 4;
    let count = version + 4 + KILN_VERSION.len() + 32;
    // Trace 0: function, anchor, then its start: tag, pc, expect, calls (one), selector.
    let start = count + 4 + 4 + 4;
    assert_eq!(bytes[start], 1, "a side trace's place");
    let expect = start + 1 + 4;
    let selector = expect + 1 + 4 + 12;
    assert_eq!(bytes[selector], 1, "at a br_table arm");

    let mut bad_expect = bytes.clone();
    bad_expect[expect] = 3;
    check_refused(
        &resealed(bad_expect),
        |e| matches!(e, CacheError::BadManifest { offset, .. } if *offset == expect),
        &["a side trace's guard expectation (0 none, 1 false, 2 true), found 3"],
    );

    let mut bad_selector = bytes.clone();
    bad_selector[selector] = 2;
    check_refused(
        &resealed(bad_selector),
        |e| matches!(e, CacheError::BadManifest { offset, .. } if *offset == selector),
        &["a side trace's br_table arm (0 none, 1 one), found 2"],
    );

    // Arm 3 of a table of 3: the layout holds, the rules do not.
    let mut past_the_table = bytes;
    past_the_table[selector + 9..selector + 13].copy_from_slice(&3u32.to_le_bytes());
    check_refused(
        &resealed(past_the_table),
        |e| matches!(e, CacheError::ManifestRule { trace: Some(0), .. }),
        &["arm 3 of a br_table of 3 arms"],
    );
}
