//! `cargo xtask deny`: cargo-deny's licence, ban and source checks of `deny.toml`.
//!
//! Those three checks work offline (they read `Cargo.lock` and the registry cache). The
//! advisories check needs the RustSec database, cloned from GitHub; it runs only with
//! `--advisories` (the GitHub workflow), since CI machines without GitHub access cannot fetch
//! it. See docs/security.md.

use anyhow::Result;

use crate::fuzz::ensure_tool;
use crate::runner::Runner;

/// Runs `cargo deny check licenses bans sources`, and `advisories` too when asked.
pub fn deny(r: &mut Runner, advisories: bool) -> Result<()> {
    let tool = ensure_tool(r, "cargo-deny", "cargo-deny")?;
    let mut cmd = std::process::Command::new(&tool);
    cmd.current_dir(crate::workspace_root()).args([
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]);
    r.run("cargo deny (licenses, bans, sources)", &mut cmd)?;
    if advisories {
        let mut cmd = std::process::Command::new(&tool);
        cmd.current_dir(crate::workspace_root()).args([
            "check",
            "--hide-inclusion-graph",
            "advisories",
        ]);
        r.run(
            "cargo deny (advisories; fetches the RustSec database)",
            &mut cmd,
        )?;
    }
    Ok(())
}
