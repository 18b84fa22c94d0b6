//! `uploads ls|abort`: incomplete multipart uploads, an S3 notion. They are invisible to every
//! listing, are never garbage-collected by the registry, and are billed until aborted.

use std::time::Duration;

use regstore_driver_api::Error;
use serde_json::json;

use super::{print_json, print_line};
use crate::backends;
use crate::error::{CliError, CliResult};
use crate::{Context, UploadsAction};

/// Lists or aborts incomplete multipart uploads of the configured backend.
///
/// Non-S3 backends have no such uploads: the command is [`Error::Unsupported`] (exit 2) there.
/// On S3, `abort --all` aborts every upload under the root directory. Listing and age
/// filtering need upload start times, which this build's S3 driver does not expose yet: those
/// forms say so (exit 2) rather than guess.
pub async fn run(ctx: &Context, action: UploadsAction) -> CliResult<()> {
    let config = ctx.storage_config()?;
    let Some(s3) = backends::open_s3(&config)? else {
        let driver = backends::open_backend(&config).await?;
        let operation = match action {
            UploadsAction::Ls { .. } => {
                "uploads ls (incomplete multipart uploads exist only on S3 backends)"
            }
            UploadsAction::Abort { .. } => {
                "uploads abort (incomplete multipart uploads exist only on S3 backends)"
            }
        };
        return Err(Error::unsupported(driver.name(), operation).into());
    };
    match action {
        UploadsAction::Ls { older_than } => {
            let _: Option<Duration> = older_than;
            Err(Error::unsupported(
                "s3aws",
                "uploads ls (this build's S3 driver does not expose upload listing with start \
                 times; `uploads abort --all` is available)",
            )
            .into())
        }
        UploadsAction::Abort {
            older_than: Some(_),
            ..
        } => Err(Error::unsupported(
            "s3aws",
            "uploads abort --older-than (this build's S3 driver does not expose upload start \
             times; `uploads abort --all` is available)",
        )
        .into()),
        UploadsAction::Abort {
            older_than: None,
            all: false,
        } => Err(CliError::Input(
            "uploads abort: give --older-than DURATION, or --all to abort every incomplete \
             upload under the root directory (a running registry's open pushes would fail)"
                .into(),
        )),
        UploadsAction::Abort {
            older_than: None,
            all: true,
        } => {
            let aborted = s3.abort_uploads_under_root().await?;
            let root = s3.config().root_directory.clone();
            if ctx.json {
                return print_json(&json!({
                    "aborted": aborted,
                    "bucket": s3.config().bucket,
                    "rootdirectory": root,
                }));
            }
            print_line(format!(
                "aborted {aborted} incomplete multipart upload(s) under s3://{}/{root}",
                s3.config().bucket
            ))
        }
    }
}
