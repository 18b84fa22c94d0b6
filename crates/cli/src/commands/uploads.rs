//! `uploads ls|abort [--older-than D]`: incomplete multipart uploads, an S3 notion.

use regstore_driver_api::Error;

use crate::backends;
use crate::error::CliResult;
use crate::{Context, UploadsAction};

/// Lists or aborts incomplete multipart uploads of the configured backend.
pub async fn run(ctx: &Context, action: UploadsAction) -> CliResult<()> {
    let config = ctx.storage_config()?;
    let driver = backends::open_backend(&config).await?;
    let operation = match action {
        UploadsAction::Ls { .. } => "uploads ls (incomplete multipart uploads exist only on S3)",
        UploadsAction::Abort { .. } => {
            "uploads abort (incomplete multipart uploads exist only on S3)"
        }
    };
    Err(Error::unsupported(driver.name(), operation).into())
}
