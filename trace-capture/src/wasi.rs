//! WASI preview1 (written next).
