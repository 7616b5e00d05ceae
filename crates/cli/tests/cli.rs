//! The `tokenkeep` CLI's behaviour as data: every file in `tests/cmd/` is one case (arguments, environment,
//! exit status, exact stdout and stderr), run against the real binary by `trycmd`.
//!
//! - `*.toml`: one command. Each case sets its own environment (`env.inherit = false`, so nothing from the
//!   developer's shell leaks in) and runs in a fresh sandbox directory (`fs.sandbox = true`), with
//!   `TOKENKEEP_HOME=home` relative to it.
//! - `*.md`: several commands sharing one sandbox (the `<name>.out/` directory turns the sandbox on, and any file
//!   in it is compared with what the commands left behind). Markdown cases cannot clear the environment, so each
//!   command line sets the variables it depends on.
//!
//! Every case is offline: no OAuth server, no OS keyring (headless `TOKENKEEP_MASTER_KEY` where a vault is opened).
//!
//! To draft expectations after an intended change: `TRYCMD=overwrite cargo test --workspace --test cli`, then read
//! every changed line — it is what a user will see.

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin("tokenkeep", std::path::Path::new(env!("CARGO_BIN_EXE_tokenkeep")))
        .case("tests/cmd/*.toml")
        .case("tests/cmd/*.md");
}
