//! `cargo xtask package`: the published crates package, and no crate declares a dependency it
//! does not use.
//!
//! * `cargo package --no-verify` of every crate meant for crates.io, in dependency order (cargo
//!   resolves the workspace's path dependencies against the packages it just built). This
//!   catches what only publishing would: a path dependency without a version, a dev-dependency
//!   cycle between published crates, a dev-only crate a published one needs, a missing README.
//!   `--no-verify` skips rebuilding every tarball; the workspace build covers the code.
//! * cargo-machete (installed under `target/tools` like the other tools): a declared but unused
//!   dependency fails. False positives are listed per crate under
//!   `[package.metadata.cargo-machete]`, each with its reason.

use anyhow::Result;

use crate::fuzz::ensure_tool;
use crate::runner::Runner;

/// Crates with `publish = false`: developer tools and tests, never packaged.
const UNPUBLISHED: &[&str] = &[
    "regstore-fault-proxy",
    "regstore-security-tests",
    "regstore-test-support",
    "xtask",
    "xtask-bench-embedded",
];

/// Packages every published crate, then runs cargo-machete over the repository.
pub fn package(r: &mut Runner) -> Result<()> {
    let mut cmd = crate::cargo();
    // --allow-dirty: a developer runs this before committing; CI runs on a clean clone anyway.
    cmd.args(["package", "--workspace", "--no-verify", "--allow-dirty"]);
    for name in UNPUBLISHED {
        cmd.args(["--exclude", name]);
    }
    r.run("cargo package (published crates, --no-verify)", &mut cmd)?;

    let machete = ensure_tool(r, "cargo-machete", "cargo-machete")?;
    let mut cmd = std::process::Command::new(machete);
    // Without arguments it scans the current directory: the workspace, crates/bench-s3-peers and
    // fuzz/.
    cmd.current_dir(crate::workspace_root());
    r.run("cargo machete (unused dependencies)", &mut cmd)
}
