//! Commands on single paths and trees: ls, stat, cat, put, mv, rm, url, walk, du.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use regstore_driver_api::{
    Driver, Error, FileInfo, RedirectMethod, RedirectRequest, WalkControl, WalkOptions,
};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{print_json, print_line};
use crate::backends;
use crate::error::{CliError, CliResult};
use crate::output::{byte_progress, human_bytes, info_json, info_line};
use crate::{Context, Method};

/// Bytes handed to the backend's writer per call; memory use of `put` is bounded by it (plus
/// whatever part buffer the backend keeps, e.g. S3's chunksize).
pub(crate) const WRITE_CHUNK: usize = 4 * 1024 * 1024;

/// Concurrent `stat` calls for `ls -l`.
const STAT_CONCURRENCY: usize = 16;

async fn open(ctx: &Context) -> CliResult<Driver> {
    backends::open(&ctx.storage_config()?).await
}

/// `ls [-l] [-R] PATH`.
pub async fn ls(ctx: &Context, path: &str, long: bool, recursive: bool) -> CliResult<()> {
    let driver = open(ctx).await?;
    if recursive {
        return walk_print(ctx, &driver, path, None, long, "ls").await;
    }
    let children = match driver.list(path).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() && path != "/" => {
            // `ls FILE` shows the file, as ls(1) does.
            let info = driver.stat(path).await?;
            if info.is_dir {
                return Err(e.into());
            }
            return print_entries(ctx, path, vec![info], true);
        }
        Err(e) => return Err(e.into()),
    };
    let mut children: Vec<String> = children.into_iter().map(|p| p.to_string()).collect();
    children.sort();
    if !long {
        if ctx.json {
            return print_json(&json!({"path": path, "entries": children}));
        }
        for c in &children {
            print_line(c)?;
        }
        return Ok(());
    }
    let infos: Vec<FileInfo> = futures::stream::iter(children)
        .map(|c| {
            let driver = driver.clone();
            async move {
                match driver.stat(&c).await {
                    Ok(info) => Ok(Some(info)),
                    // Deleted between list and stat: not there any more.
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .buffered(STAT_CONCURRENCY)
        .try_filter_map(|x| async move { Ok(x) })
        .try_collect()
        .await?;
    print_entries(ctx, path, infos, true)
}

fn print_entries(ctx: &Context, path: &str, infos: Vec<FileInfo>, long: bool) -> CliResult<()> {
    if ctx.json {
        let entries: Vec<_> = infos.iter().map(info_json).collect();
        return print_json(&json!({"path": path, "entries": entries}));
    }
    for info in &infos {
        if long {
            print_line(info_line(info))?;
        } else {
            print_line(&info.path)?;
        }
    }
    Ok(())
}

/// Walks `path` printing each entry as it comes (human) or collecting them (JSON).
async fn walk_print(
    ctx: &Context,
    driver: &Driver,
    path: &str,
    start_after: Option<&str>,
    long: bool,
    command: &str,
) -> CliResult<()> {
    let options = match start_after {
        None => WalkOptions::default(),
        Some(p) => WalkOptions::start_after(
            regstore_driver_api::StoragePath::parse(p)
                .ok_or_else(|| Error::invalid_path(driver.name(), p))?,
        ),
    };
    let mut entries = Vec::new();
    let mut out_err: Option<CliError> = None;
    let json = ctx.json;
    driver
        .walk(path, &options, |info| {
            if json {
                entries.push(info_json(info));
            } else {
                let line = if long {
                    info_line(info)
                } else if info.is_dir {
                    format!("{}/", info.path)
                } else {
                    info.path.to_string()
                };
                if let Err(e) = print_line(line) {
                    out_err = Some(e);
                    return Ok(WalkControl::Stop);
                }
            }
            Ok(WalkControl::Continue)
        })
        .await?;
    if let Some(e) = out_err {
        return Err(e);
    }
    if json {
        print_json(&json!({
            "command": command,
            "path": path,
            "start_after": start_after,
            "entries": entries,
        }))?;
    }
    Ok(())
}

/// `stat PATH`.
pub async fn stat(ctx: &Context, path: &str) -> CliResult<()> {
    let driver = open(ctx).await?;
    let info = driver.stat(path).await?;
    if ctx.json {
        return print_json(&info_json(&info));
    }
    print_line(format!("path:     {}", info.path))?;
    print_line(format!(
        "type:     {}",
        if info.is_dir { "directory" } else { "file" }
    ))?;
    if !info.is_dir {
        print_line(format!(
            "size:     {} ({})",
            info.size,
            human_bytes(info.size)
        ))?;
    }
    print_line(format!(
        "modified: {}",
        info.mod_time
            .map(crate::output::rfc3339)
            .unwrap_or_else(|| "-".into())
    ))?;
    print_line(format!("backend:  {}", driver.name()))
}

/// `cat PATH`: streams the object to stdout chunk by chunk.
pub async fn cat(ctx: &Context, path: &str) -> CliResult<()> {
    if ctx.json {
        return Err(CliError::Input(
            "cat writes the object's raw bytes; --json is not available for it (use stat)".into(),
        ));
    }
    let driver = open(ctx).await?;
    let mut stream = driver.reader(path, 0).await?;
    let mut out = tokio::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        out.write_all(&chunk)
            .await
            .map_err(|e| CliError::io("stdout", e))?;
    }
    out.flush().await.map_err(|e| CliError::io("stdout", e))
}

/// `put PATH [FILE|-]`: streams the file through the backend writer in [`WRITE_CHUNK`] pieces,
/// commits, and cancels the upload if anything fails.
pub async fn put(ctx: &Context, path: &str, file: Option<&Path>) -> CliResult<()> {
    let driver = open(ctx).await?;
    let (mut input, total, source): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>, String) =
        match file {
            None => (Box::new(tokio::io::stdin()), None, "stdin".into()),
            Some(p) if p.as_os_str() == "-" => (Box::new(tokio::io::stdin()), None, "stdin".into()),
            Some(p) => {
                let f = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| CliError::io(p.display().to_string(), e))?;
                let meta = f
                    .metadata()
                    .await
                    .map_err(|e| CliError::io(p.display().to_string(), e))?;
                if meta.is_dir() {
                    return Err(CliError::Input(format!(
                        "{}: is a directory; put stores one file",
                        p.display()
                    )));
                }
                (Box::new(f), Some(meta.len()), p.display().to_string())
            }
        };
    // Writing over a directory would fail deep in the backend with an OS or S3 error.
    match driver.stat(path).await {
        Ok(info) if info.is_dir => {
            return Err(CliError::Input(format!(
                "put: {path} is a directory; give the path of an object"
            )))
        }
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let mut writer = driver.writer(path, false).await?;
    let progress = byte_progress(total.unwrap_or(0), path);
    let copy = async {
        let mut written = 0u64;
        loop {
            let mut buf = bytes::BytesMut::with_capacity(WRITE_CHUNK);
            while buf.len() < WRITE_CHUNK {
                let n = input
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| CliError::io(source.clone(), e))?;
                if n == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
            let n = buf.len() as u64;
            writer.write(buf.freeze()).await?;
            written += n;
            progress.inc(n);
        }
        writer.commit().await?;
        Ok(written)
    };
    // Ctrl-C must not leave a half-written upload behind (on S3 it would be billed until
    // aborted): stop copying, then cancel below like any other failure.
    let result: CliResult<u64> = tokio::select! {
        r = copy => r,
        _ = tokio::signal::ctrl_c() => Err(CliError::io(
            format!("put {path}"),
            std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted; the upload was cancelled",
            ),
        )),
    };
    progress.finish_and_clear();
    let written = match result {
        Ok(n) => n,
        Err(e) => {
            // Leave no half-written upload behind; the original error is what matters.
            if let Err(cancel) = writer.cancel().await {
                tracing::warn!(error = %cancel, "cancelling the failed upload failed too");
            }
            return Err(e);
        }
    };
    if ctx.json {
        return print_json(&json!({"path": path, "size": written, "source": source}));
    }
    print_line(format!(
        "put {path}: {written} bytes ({}) from {source}",
        human_bytes(written)
    ))
}

/// `mv SRC DST`.
pub async fn mv(ctx: &Context, src: &str, dst: &str) -> CliResult<()> {
    let driver = open(ctx).await?;
    driver.move_object(src, dst).await?;
    if ctx.json {
        return print_json(&json!({"moved": src, "to": dst}));
    }
    print_line(format!("moved {src} -> {dst}"))
}

/// `rm [-r] PATH`: refuses a directory without `-r`.
pub async fn rm(ctx: &Context, path: &str, recursive: bool) -> CliResult<()> {
    let driver = open(ctx).await?;
    let info = driver.stat(path).await?;
    if info.is_dir && !recursive {
        return Err(CliError::Input(format!(
            "rm: {path} is a directory; use rm -r to delete it and everything below it"
        )));
    }
    driver.delete(path).await?;
    if ctx.json {
        return print_json(&json!({
            "deleted": path,
            "type": if info.is_dir { "directory" } else { "file" },
        }));
    }
    print_line(format!(
        "deleted {}{path}",
        if info.is_dir { "directory " } else { "" }
    ))
}

/// `url [--method GET|HEAD] PATH`: the redirect URL through the middleware chain.
pub async fn url(ctx: &Context, path: &str, method: Method) -> CliResult<()> {
    let config = ctx.storage_config()?;
    let driver = backends::open(&config).await?;
    let info = driver.stat(path).await?;
    if info.is_dir {
        return Err(CliError::Input(format!(
            "url: {path} is a directory; redirects exist only for objects"
        )));
    }
    let (method_name, redirect_method) = match method {
        Method::Get => ("GET", RedirectMethod::Get),
        Method::Head => ("HEAD", RedirectMethod::Head),
    };
    let (url, reason) = if config.redirect_disabled {
        (
            None,
            format!(
                "storage.redirect.disable is true in {}: the registry serves {path} itself",
                config.origin
            ),
        )
    } else {
        match driver
            .redirect_url(&RedirectRequest::new(redirect_method), path)
            .await?
        {
            Some(u) => (Some(u), String::new()),
            None => (
                None,
                format!(
                    "backend {}{} gives no redirect URL for {method_name}: \
                     the registry serves {path} itself",
                    driver.name(),
                    if config.middlewares.iter().any(|m| !m.disabled) {
                        " with its middlewares"
                    } else {
                        ""
                    }
                ),
            ),
        }
    };
    if ctx.json {
        return print_json(&json!({
            "path": path,
            "method": method_name,
            "redirect": url.is_some(),
            "url": url.as_ref().map(|u| u.as_str()),
            "reason": if url.is_some() { None } else { Some(reason.as_str()) },
        }));
    }
    match url {
        Some(u) => print_line(u),
        None => print_line(format!("no redirect: {reason}")),
    }
}

/// `walk [--start-after P] [PATH]`.
pub async fn walk(ctx: &Context, path: &str, start_after: Option<&str>) -> CliResult<()> {
    let driver = open(ctx).await?;
    walk_print(ctx, &driver, path, start_after, true, "walk").await
}

/// `du [PATH]`: total bytes, files and directories below `path`, by walking.
pub async fn du(ctx: &Context, path: &str) -> CliResult<()> {
    let driver = open(ctx).await?;
    let (mut bytes, mut files, mut dirs) = (0u64, 0u64, 0u64);
    // The root always exists (an empty store has an empty root), whatever stat says of it.
    let root = if path == "/" {
        FileInfo::dir(regstore_driver_api::StoragePath::root())
    } else {
        driver.stat(path).await?
    };
    if root.is_dir {
        driver
            .walk(path, &WalkOptions::default(), |info| {
                if info.is_dir {
                    dirs += 1;
                } else {
                    files += 1;
                    bytes += info.size;
                }
                Ok(WalkControl::Continue)
            })
            .await?;
    } else {
        files = 1;
        bytes = root.size;
    }
    if ctx.json {
        return print_json(&json!({
            "path": path,
            "bytes": bytes,
            "files": files,
            "directories": dirs,
        }));
    }
    print_line(format!(
        "{}\t{bytes} bytes\t{files} files\t{dirs} directories\t{path}",
        human_bytes(bytes)
    ))
}
