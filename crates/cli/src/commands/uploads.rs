//! `uploads ls|abort`: incomplete multipart uploads, an S3 notion. They are invisible to every
//! listing, are never garbage-collected by the registry, and are billed until aborted.

use std::time::{Duration, SystemTime};

use regstore_driver_api::{Error, StoragePath};
use regstore_driver_s3::{IncompleteUpload, S3Driver};
use serde_json::{json, Value};

use super::{print_json, print_line};
use crate::backends;
use crate::error::{CliError, CliResult};
use crate::output::rfc3339;
use crate::{Context, UploadsAction};

/// Lists or aborts incomplete multipart uploads of the configured backend.
///
/// Non-S3 backends have no such uploads: the command is [`Error::Unsupported`] (exit 2) there.
/// On S3 both forms look at the upload of `PATH` itself and every upload below it (default
/// `/`, the whole root directory). `abort` needs `--older-than DURATION` or `--all` (exit 2
/// without either): with `--older-than` an upload whose start time the server did not give
/// is kept, since its age cannot be shown to exceed the limit. An upload that disappears
/// between listing and abort (committed or aborted by someone else) is reported as gone, not
/// as a failure; any other failed abort makes the command exit 1 after reporting the rest.
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
        UploadsAction::Ls { older_than, path } => {
            ls(ctx, &s3, &parse_path(&path)?, older_than).await
        }
        UploadsAction::Abort {
            older_than: None,
            all: false,
            ..
        } => Err(CliError::Input(
            "uploads abort: give --older-than DURATION (e.g. 24h, 7d), or --all to abort every \
             incomplete upload at or below the path (a running registry's open pushes would \
             fail)"
                .into(),
        )),
        UploadsAction::Abort {
            older_than, path, ..
        } => abort(ctx, &s3, &parse_path(&path)?, older_than).await,
    }
}

/// A storage path from the command line; `/` is allowed (the whole root directory).
fn parse_path(path: &str) -> CliResult<StoragePath> {
    StoragePath::parse_dir(path).ok_or_else(|| Error::invalid_path("s3aws", path).into())
}

/// How long ago `initiated` was; zero when the server's clock is ahead of ours.
fn age(initiated: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(initiated).unwrap_or_default()
}

/// Whether `upload` is older than `limit` (`None`: every upload qualifies). An upload without
/// a start time never qualifies for a limit.
fn qualifies(upload: &IncompleteUpload, limit: Option<Duration>, now: SystemTime) -> bool {
    match (limit, upload.initiated) {
        (None, _) => true,
        (Some(limit), Some(t)) => age(t, now) >= limit,
        (Some(_), None) => false,
    }
}

/// A short age for humans: the two largest units (`3d4h`, `2h5m`, `45s`).
fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{mins}m")
    } else if mins > 0 {
        format!("{mins}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// Where the uploads live, for messages: `s3://bucket/root/path`.
fn location(s3: &S3Driver, under: &StoragePath) -> String {
    let cfg = s3.config();
    let rel = if under.is_root() {
        ""
    } else {
        under.as_str().trim_start_matches('/')
    };
    format!("s3://{}/{}{rel}", cfg.bucket, cfg.root_directory)
}

/// The JSON object of one upload.
fn upload_json(u: &IncompleteUpload, now: SystemTime) -> Value {
    json!({
        "path": u.path.as_str(),
        "key": u.key,
        "upload_id": u.upload_id,
        "initiated": u.initiated.map(rfc3339),
        "age_seconds": u.initiated.map(|t| age(t, now).as_secs()),
    })
}

/// The start time and age columns of one upload (`-` when unknown).
fn time_columns(u: &IncompleteUpload, now: SystemTime) -> (String, String) {
    match u.initiated {
        Some(t) => (rfc3339(t), human_age(age(t, now))),
        None => ("-".into(), "-".into()),
    }
}

async fn ls(
    ctx: &Context,
    s3: &S3Driver,
    under: &StoragePath,
    older_than: Option<Duration>,
) -> CliResult<()> {
    let now = SystemTime::now();
    let uploads: Vec<IncompleteUpload> = s3
        .list_incomplete_uploads(under)
        .await?
        .into_iter()
        .filter(|u| qualifies(u, older_than, now))
        .collect();
    if ctx.json {
        return print_json(&json!({
            "bucket": s3.config().bucket,
            "rootdirectory": s3.config().root_directory,
            "path": under.as_str(),
            "uploads": uploads.iter().map(|u| upload_json(u, now)).collect::<Vec<_>>(),
        }));
    }
    if uploads.is_empty() {
        return print_line(format!(
            "no incomplete multipart uploads at or below {}",
            location(s3, under)
        ));
    }
    let rows: Vec<(String, String, &str, &str)> = uploads
        .iter()
        .map(|u| {
            let (t, a) = time_columns(u, now);
            (t, a, u.upload_id.as_str(), u.path.as_str())
        })
        .collect();
    let id_width = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(9);
    print_line(format!(
        "{:<20}  {:>7}  {:<id_width$}  PATH",
        "INITIATED", "AGE", "UPLOAD ID"
    ))?;
    for (t, a, id, path) in &rows {
        print_line(format!("{t:<20}  {a:>7}  {id:<id_width$}  {path}"))?;
    }
    Ok(())
}

async fn abort(
    ctx: &Context,
    s3: &S3Driver,
    under: &StoragePath,
    older_than: Option<Duration>,
) -> CliResult<()> {
    let now = SystemTime::now();
    let uploads = s3.list_incomplete_uploads(under).await?;
    let (mut aborted, mut gone, mut kept, mut failed) = (0usize, 0usize, 0usize, Vec::new());
    let mut report = Vec::with_capacity(uploads.len());
    for u in &uploads {
        let mut doc = upload_json(u, now);
        let result = if !qualifies(u, older_than, now) {
            kept += 1;
            "kept"
        } else {
            match s3.abort_incomplete_upload(u).await {
                Ok(()) => {
                    aborted += 1;
                    "aborted"
                }
                Err(e) if e.is_not_found() => {
                    gone += 1;
                    "gone"
                }
                Err(e) => {
                    doc["error"] = json!(e.to_string());
                    failed.push(e);
                    "failed"
                }
            }
        };
        doc["result"] = json!(result);
        if !ctx.json && result != "kept" {
            let (t, _) = time_columns(u, now);
            let line = match doc["error"].as_str() {
                Some(err) => format!("{result} {} ({}, started {t}): {err}", u.path, u.upload_id),
                None => format!("{result} {} ({}, started {t})", u.path, u.upload_id),
            };
            print_line(line)?;
        }
        report.push(doc);
    }
    // Tail records (a closed writer's last bytes) whose upload is gone: only for the whole
    // root, since a record does not say which path it belongs to without reading it.
    let orphan_records = if under.is_root() {
        match s3.delete_orphan_tail_records(older_than).await {
            Ok(n) => n,
            Err(e) => {
                failed.push(e);
                0
            }
        }
    } else {
        0
    };
    if ctx.json {
        print_json(&json!({
            "orphan_tail_records_deleted": orphan_records,
            "bucket": s3.config().bucket,
            "rootdirectory": s3.config().root_directory,
            "path": under.as_str(),
            "older_than_seconds": older_than.map(|d| d.as_secs()),
            "aborted": aborted,
            "gone": gone,
            "kept": kept,
            "failed": failed.len(),
            "uploads": report,
        }))?;
    } else {
        let mut summary = format!(
            "aborted {aborted} incomplete multipart upload(s) at or below {}",
            location(s3, under)
        );
        if let Some(limit) = older_than {
            summary.push_str(&format!(
                "; kept {kept} started less than {} ago or at an unknown time",
                human_age(limit)
            ));
        }
        if gone > 0 {
            summary.push_str(&format!("; {gone} had already gone"));
        }
        if orphan_records > 0 {
            summary.push_str(&format!(
                "; deleted {orphan_records} tail record(s) of uploads that no longer exist"
            ));
        }
        print_line(summary)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} incomplete multipart upload(s) could not be aborted (first: {})",
            failed.len(),
            failed[0]
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(human_age(Duration::from_secs(0)), "0s");
        assert_eq!(human_age(Duration::from_secs(59)), "59s");
        assert_eq!(human_age(Duration::from_secs(90)), "1m30s");
        assert_eq!(human_age(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human_age(Duration::from_secs(7 * 86_400 + 3600)), "7d1h");
    }

    #[test]
    fn future_start_times_are_age_zero() {
        let now = SystemTime::now();
        assert_eq!(age(now + Duration::from_secs(5), now), Duration::ZERO);
        assert_eq!(
            age(now - Duration::from_secs(5), now),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn paths_accept_root_and_reject_bad_input() {
        assert!(parse_path("/").is_ok());
        assert!(parse_path("/docker/_uploads").is_ok());
        for bad in ["docker", "/a//b", "/../x", ""] {
            let err = parse_path(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }
}
