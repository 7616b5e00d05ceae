//! `tokenkeep-core`'s integration tests: one binary, one module per subject.
//!
//! - `store`: the vault on real sled stores in temporary directories, with an in-memory key store and a
//!   hand-driven clock (the `test-support` fakes).
//! - `recovery`: damaged, rolled-back and missing stores, and restores from the sealed backups.
//! - `format_doc`: an independent reader and writer of the record format, written only from `docs/FORMAT.md`.
//! - `layering`: the module layering of `ARCHITECTURE.md`, checked against every `use` in the sources.
//!
//! The vault against the real OS keyring lives with the other tests that start real components, in
//! `tests/e2e/keyring.rs`.

mod format_doc;
mod layering;
mod recovery;
mod store;
