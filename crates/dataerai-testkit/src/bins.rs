//! The binaries under test, as cargo built them for this run.
//!
//! `CARGO_BIN_EXE_<name>` only exists for the binaries of the test's own
//! package, and the daemon's tests also need the server (and the other way
//! round for nothing). So binaries are looked up next to the running test
//! executable: cargo puts integration tests in `target/<profile>/deps/` and
//! the workspace's binaries in `target/<profile>/`, built with the same
//! profile and features by `cargo test --workspace` (or `cargo build
//! --workspace --all-targets`). A hard-coded `target/debug` would pick up a
//! stale binary of another profile or target directory.

use std::path::PathBuf;

/// The path of workspace binary `name` built for this test run; panics with
/// what to run when it is missing.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not found next to the test executable: build it with `cargo build --workspace \
         --all-targets` using the same profile and features as `cargo test` (the Makefile's \
         `make build` does), or run `cargo test --workspace`",
        path.display()
    );
    path
}
