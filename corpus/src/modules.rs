//! The apps' modules: the bytes of every module a run recorded from, keyed by their
//! SHA-256 (what `runs.module_hash` and trace provenance name). With them a corpus is
//! all the nightly job needs to build each app's cache library.

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::write::now;
use crate::{Corpus, CorpusError, Problem, ProblemKind};

/// The SHA-256 of `bytes` in lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Corpus {
    /// Stores a module's bytes (once: a module already stored is left as it is) and
    /// returns its hash. One transaction.
    pub fn put_module(&mut self, bytes: &[u8]) -> Result<String, CorpusError> {
        const CONTEXT: &str = "storing a module";
        let hash = sha256_hex(bytes);
        let created = now();
        self.write(CONTEXT, |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO modules (hash, bytes, size, created) VALUES (?1, ?2, ?3, ?4)",
                params![hash, bytes, bytes.len() as i64, created],
            )
            .map_err(|source| CorpusError::Database {
                context: CONTEXT,
                source,
            })?;
            Ok(())
        })?;
        Ok(hash)
    }

    /// The module stored under `hash`, checked: bytes that no longer hash to their key
    /// are [`CorpusError::Corrupt`], naming the module.
    pub fn module(&self, hash: &str) -> Result<Option<Vec<u8>>, CorpusError> {
        const CONTEXT: &str = "reading a module";
        let bytes: Option<Vec<u8>> = self.read(CONTEXT, |conn| {
            conn.query_row("SELECT bytes FROM modules WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|source| CorpusError::Database {
                context: CONTEXT,
                source,
            })
        })?;
        match bytes {
            Some(bytes) if sha256_hex(&bytes) != hash => Err(CorpusError::Corrupt(Problem::new(
                format!("module {hash}"),
                ProblemKind::Unreadable("its bytes hash to something else".to_string()),
            ))),
            other => Ok(other),
        }
    }
}
