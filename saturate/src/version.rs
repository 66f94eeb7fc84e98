//! The optimizer's version string, half of the key of a stored result (the trace's content
//! hash is the other half): a result is current only while the optimizer that made it
//! would make the same one.
//!
//! What can change a candidate is hashed: the rule library (every family's and rule's
//! name, and the source text of the rules), the cost model's source (`cost.rs`, so any
//! cost constant), the source of every step that shapes a candidate (lifting, guard
//! facts, the analysis, extraction, lowering, the language) and the default limits. The
//! source text is hashed rather than a hand-kept number so that nobody has to remember
//! to bump it; the price is that an edit to a comment in those files also makes every
//! stored result stale, which costs one rerun and is never wrong.
//!
//! The solver's version is not in here (`saturate` does not know z3): the nightly job
//! appends it, since a new solver may turn an unknown into a proof.

use std::sync::OnceLock;

use crate::{rules, DEFAULT_ITER_LIMIT, DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT};

/// The source files whose text decides what the optimizer proposes.
const SHAPING_SOURCES: &[&str] = &[
    include_str!("rules/mod.rs"),
    include_str!("rules/int_algebra.rs"),
    include_str!("rules/bitops.rs"),
    include_str!("rules/shifts.rs"),
    include_str!("rules/compare.rs"),
    include_str!("rules/select.rs"),
    include_str!("rules/extend_wrap.rs"),
    include_str!("rules/memory.rs"),
    include_str!("cost.rs"),
    include_str!("lang.rs"),
    include_str!("facts.rs"),
    include_str!("analysis.rs"),
    include_str!("lift.rs"),
    include_str!("extract.rs"),
    include_str!("lower.rs"),
];

/// The optimizer's version: `saturate-` and 16 hex digits of a hash of everything listed
/// in the module comment. Stable across builds and platforms of the same source.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Fnv1a::new();
        for (family, names) in &rules::library().families {
            hash.field(family.as_bytes());
            for name in names {
                hash.field(name.as_bytes());
            }
        }
        for source in SHAPING_SOURCES {
            hash.field(source.as_bytes());
        }
        hash.field(&(DEFAULT_NODE_LIMIT as u64).to_le_bytes());
        hash.field(&(DEFAULT_ITER_LIMIT as u64).to_le_bytes());
        hash.field(&DEFAULT_TIME_LIMIT.as_nanos().to_le_bytes());
        format!("saturate-{:016x}", hash.0)
    })
}

/// 64-bit FNV-1a: a fixed, documented hash (std's `DefaultHasher` may change between Rust
/// releases, which would make every stored result stale for no reason). Not for
/// security: the key only has to change when the optimizer does.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv1a {
        Fnv1a(Self::OFFSET)
    }

    /// Hashes `bytes` preceded by their length, so that moving bytes from one field to
    /// the next changes the hash.
    fn field(&mut self, bytes: &[u8]) {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_stable_and_well_formed() {
        let v = version();
        assert_eq!(v, version());
        let hex = v.strip_prefix("saturate-").expect(v);
        assert_eq!(hex.len(), 16);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    }

    #[test]
    fn fields_are_delimited() {
        let mut a = Fnv1a::new();
        a.field(b"ab");
        a.field(b"c");
        let mut b = Fnv1a::new();
        b.field(b"a");
        b.field(b"bc");
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn every_rule_file_is_hashed() {
        // A new rule family needs its file in SHAPING_SOURCES: one source per family,
        // plus rules/mod.rs.
        let rule_files = SHAPING_SOURCES
            .iter()
            .filter(|s| s.contains(") fn rules() -> Vec<Rule>") || s.contains("pub fn library()"))
            .count();
        assert_eq!(rule_files, rules::library().families.len() + 1);
    }
}
