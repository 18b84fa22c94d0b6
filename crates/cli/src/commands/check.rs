//! `check` and `bench`: the conformance suite and benchmark set against the configured backend.

use regstore_driver_api::Error;

use crate::error::CliResult;
use crate::Context;

/// Runs the conformance suite (and a short benchmark) under a scratch prefix.
pub async fn check(ctx: &Context, filter: Option<&str>, bench: bool) -> CliResult<()> {
    let _ = (ctx, filter, bench);
    Err(Error::unsupported(
        "regstore",
        "check (the conformance suite is not linked in this build)",
    )
    .into())
}

/// Runs the benchmark set under a scratch prefix.
pub async fn bench(ctx: &Context, filter: Option<&str>) -> CliResult<()> {
    let _ = (ctx, filter);
    Err(Error::unsupported(
        "regstore",
        "bench (the conformance suite is not linked in this build)",
    )
    .into())
}
