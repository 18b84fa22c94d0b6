//! `fsck`: report (and with `--repair`, fix) inconsistencies of distribution's layout.

use regstore_registry_layout::fsck::{self, FsckOptions};
use regstore_registry_layout::Layout;
use serde_json::json;

use super::gc::{fail, Bar};
use super::{print_json, print_line};
use crate::backends;
use crate::error::{CliError, CliResult};
use crate::Context;

/// Runs `fsck` on the layout rooted at `root`; exit 1 when anything is wrong.
pub async fn run(ctx: &Context, root: &str, options: FsckOptions) -> CliResult<()> {
    let driver = backends::open_backend(&ctx.storage_config()?).await?;
    let layout = Layout::new(root);
    let bar = Bar::new();
    let report = fsck::check(&driver, &layout, &options, &bar).await;
    bar.finish();
    let report = report.map_err(|e| fail(ctx, e))?;
    let unrepaired = report.problems.iter().filter(|p| !p.repaired).count();
    if ctx.json {
        let mut doc = serde_json::to_value(&report).unwrap_or_default();
        doc["clean"] = json!(report.is_clean());
        print_json(&doc)?;
    } else {
        for p in &report.problems {
            let kind = serde_json::to_value(p.kind).unwrap_or_default();
            print_line(format!(
                "{}: {}: {}{}",
                kind.as_str().unwrap_or("problem"),
                p.path,
                p.detail,
                if p.repaired { " (repaired)" } else { "" }
            ))?;
        }
        print_line(format!(
            "{} blobs, {} repositories, {} manifests, {} links checked: {} problems ({} repaired)",
            report.blobs,
            report.repositories,
            report.manifests,
            report.links,
            report.problems.len(),
            report.problems.len() - unrepaired
        ))?;
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "fsck: {} problems found, {unrepaired} not repaired",
            report.problems.len()
        )))
    }
}
