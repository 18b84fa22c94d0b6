//! `gc`: distribution's garbage collection, safe beside a running registry (see docs/gc.md).
//! The layout knowledge lives in `regstore-registry-layout`; this only prints.

use std::time::{Duration, Instant};

use regstore_registry_layout::gc::{self, GcOptions, GcPlan, Progress};
use regstore_registry_layout::{Layout, LayoutError};
use serde_json::json;

use super::{print_json, print_line};
use crate::backends;
use crate::error::{CliError, CliResult};
use crate::output::{human_bytes, rfc3339, stderr_is_tty};
use crate::Context;

/// A spinner on stderr naming the phase and counting items; hidden off a terminal.
pub(crate) struct Bar(indicatif::ProgressBar);

impl Bar {
    pub(crate) fn new() -> Self {
        if !stderr_is_tty() {
            return Bar(indicatif::ProgressBar::hidden());
        }
        let pb =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} {elapsed}")
        {
            pb.set_style(style);
        }
        pb.enable_steady_tick(Duration::from_millis(200));
        Bar(pb)
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn stage(&self, name: &'static str) {
        self.0.set_message(name);
        self.0.set_position(0);
    }
    fn tick(&self, n: u64) {
        self.0.inc(n);
    }
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct GcArgs {
    /// Print what would be deleted; delete nothing.
    pub dry_run: bool,
    /// Library options.
    pub options: GcOptions,
    /// The layout root inside the storage.
    pub root: String,
}

/// A layout error as the command's one-line failure (exit 1), with a JSON document if asked.
pub(crate) fn fail(ctx: &Context, e: LayoutError) -> CliError {
    let e = match e {
        LayoutError::Storage(e) => return CliError::Driver(e),
        other => other.to_string(),
    };
    if ctx.json {
        let _ = print_json(&json!({"error": e, "exit_code": 1}));
    }
    CliError::Failed(e)
}

fn plan_json(p: &GcPlan, args: &GcArgs) -> serde_json::Value {
    json!({
        "dry_run": args.dry_run,
        "delete_untagged": args.options.delete_untagged,
        "min_age_seconds": args.options.min_age.as_secs(),
        "started": rfc3339(p.started),
        "cutoff": rfc3339(p.cutoff),
        "repositories": p.repositories,
        "marked": p.marked,
        "mark_set_bytes": p.mark_set_bytes,
        "manifests": p.manifests.iter().map(|m| json!({
            "repository": m.repository, "digest": m.digest.as_str(), "tags": m.tags,
        })).collect::<Vec<_>>(),
        "blobs": p.blobs.iter().map(|b| json!({"digest": b.digest.as_str(), "size": b.size})).collect::<Vec<_>>(),
        "blob_bytes": p.blob_bytes(),
        "layer_links": p.layer_links.iter().map(|l| json!({
            "repository": l.repository, "digest": l.digest.as_str(),
        })).collect::<Vec<_>>(),
        "kept_young": {"blobs": p.kept_young_blobs, "manifests": p.kept_young_manifests},
        "bad_manifests": p.bad_manifests,
    })
}

/// Runs `gc`. Stdout carries distribution's lines (`manifest eligible for deletion: …`, the
/// summary, `blob eligible for deletion: …`) plus v3-style layer-link lines; everything else
/// goes to stderr, so scripts written for `registry garbage-collect` keep working.
pub async fn run(ctx: &Context, args: GcArgs) -> CliResult<()> {
    let driver = backends::open_backend(&ctx.storage_config()?).await?;
    let layout = Layout::new(&args.root);
    let started = Instant::now();
    let bar = Bar::new();
    let plan = match gc::plan(&driver, &layout, &args.options, &bar).await {
        Ok(p) => p,
        Err(e) => {
            bar.finish();
            return Err(fail(ctx, e));
        }
    };
    let outcome = if args.dry_run {
        None
    } else {
        Some(gc::sweep(&driver, &layout, &plan, args.options.jobs, &bar).await)
    };
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        let mut doc = plan_json(&plan, &args);
        doc["seconds"] = json!(secs);
        if let Some((o, err)) = &outcome {
            doc["deleted"] = json!({
                "manifests": o.manifests, "layer_links": o.layer_links,
                "blobs": o.blobs, "bytes": o.bytes,
            });
            if let Some(e) = err {
                doc["error"] = json!(e.to_string());
            }
        }
        print_json(&doc)?;
    } else {
        for m in &plan.manifests {
            print_line(format!("manifest eligible for deletion: {}", m.digest))?;
        }
        print_line("")?;
        print_line(format!(
            "{} blobs marked, {} blobs and {} manifests eligible for deletion",
            plan.marked,
            plan.blobs.len(),
            plan.manifests.len()
        ))?;
        for b in &plan.blobs {
            print_line(format!("blob eligible for deletion: {}", b.digest))?;
        }
        for l in &plan.layer_links {
            print_line(format!(
                "{}: layer link eligible for deletion: {}",
                l.repository, l.digest
            ))?;
        }
        for b in &plan.bad_manifests {
            eprintln!("regstore: gc: skipped: {b}");
        }
        eprintln!(
            "regstore: gc: {} repositories, {} blobs eligible ({}); kept as modified after {}: \
             {} blobs, {} manifests; {secs:.1}s",
            plan.repositories,
            plan.blobs.len(),
            human_bytes(plan.blob_bytes()),
            rfc3339(plan.cutoff),
            plan.kept_young_blobs,
            plan.kept_young_manifests,
        );
        if let Some((o, _)) = &outcome {
            eprintln!(
                "regstore: gc: deleted {} manifests, {} layer links, {} blobs ({})",
                o.manifests,
                o.layer_links,
                o.blobs,
                human_bytes(o.bytes)
            );
        }
    }
    match outcome {
        Some((_, Some(e))) => Err(CliError::Failed(format!(
            "gc stopped while deleting (the store is consistent; run gc again): {e}"
        ))),
        _ => Ok(()),
    }
}
