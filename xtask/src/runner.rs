//! Step runner: prints every step before it starts, its elapsed time when it ends, and which step
//! failed, so a CI log shows where the time went and where it broke without scrolling.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Set by the SIGINT handler. xtask itself survives Ctrl-C (the child processes in the terminal's
/// process group still receive it and stop), so that the server guards' `Drop` runs and the servers
/// it started are stopped instead of being left behind.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Only an atomic store: anything else is not async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT handler described at [`INTERRUPTED`]. A handler (rather than `SIG_IGN`) is
/// used because handlers are reset on `exec`, so cargo and the servers still get the default
/// Ctrl-C behaviour; an ignored disposition would be inherited and make them unkillable by Ctrl-C.
pub fn install_interrupt_handler() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: installing a handler that performs a single atomic store is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// Fails when Ctrl-C was pressed; called between steps and inside wait loops.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted (Ctrl-C)");
    }
    Ok(())
}

/// Records the steps of one xtask invocation and their durations.
pub struct Runner {
    started: Instant,
    steps: Vec<(String, Duration, bool)>,
    keep_going: bool,
    deferred: Vec<String>,
}

impl Runner {
    /// With `keep_going`, steps run through [`Runner::check`] record their failure and let the
    /// run continue; [`Runner::finish`] then fails naming all of them.
    pub fn new(keep_going: bool) -> Self {
        Runner {
            started: Instant::now(),
            steps: Vec::new(),
            keep_going,
            deferred: Vec::new(),
        }
    }

    /// Like [`Runner::run`], but with `--keep-going` a failure is remembered instead of ending
    /// the run (for independent checks such as fmt, clippy, docs).
    pub fn check(&mut self, label: &str, cmd: &mut Command) -> Result<()> {
        match self.run(label, cmd) {
            Err(e) if self.keep_going => {
                check_interrupted()?;
                eprintln!("    (--keep-going: continuing after this failure)");
                self.deferred.push(format!("{e:#}"));
                Ok(())
            }
            other => other,
        }
    }

    /// Fails if a step failed under `--keep-going`.
    pub fn finish(&self) -> Result<()> {
        if self.deferred.is_empty() {
            Ok(())
        } else {
            bail!(
                "{} step(s) failed:\n  {}",
                self.deferred.len(),
                self.deferred.join("\n  ")
            )
        }
    }

    /// Runs `cmd` with inherited stdio (cargo's own output and test summaries stay visible) and
    /// fails with the step's label when it exits unsuccessfully.
    pub fn run(&mut self, label: &str, cmd: &mut Command) -> Result<()> {
        let shown = display_command(cmd);
        self.stage(label, &shown, || {
            let status = cmd
                .status()
                .with_context(|| format!("could not start `{shown}`"))?;
            check_interrupted()?;
            if !status.success() {
                bail!("`{shown}` exited with {status}");
            }
            Ok(())
        })
    }

    /// Runs an in-process step (server start-up, for instance) with the same reporting as `run`.
    pub fn stage<T>(
        &mut self,
        label: &str,
        detail: &str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        check_interrupted()?;
        if detail.is_empty() || detail == label {
            eprintln!("==> {label}");
        } else {
            eprintln!("==> {label}: {detail}");
        }
        let t = Instant::now();
        let result = f();
        let elapsed = t.elapsed();
        let ok = result.is_ok();
        self.steps.push((label.to_string(), elapsed, ok));
        if ok {
            eprintln!(
                "<== {label}: ok in {:.1}s (total {:.1}s)",
                elapsed.as_secs_f64(),
                self.started.elapsed().as_secs_f64()
            );
        } else {
            eprintln!("<== {label}: FAILED after {:.1}s", elapsed.as_secs_f64());
        }
        result.with_context(|| format!("step `{label}` failed"))
    }

    /// Prints one line per step; called at the end whether the run passed or failed.
    pub fn summary(&self) {
        if self.steps.is_empty() {
            return;
        }
        eprintln!(
            "\n==> summary ({:.1}s total)",
            self.started.elapsed().as_secs_f64()
        );
        for (label, elapsed, ok) in &self.steps {
            let mark = if *ok { "ok    " } else { "FAILED" };
            eprintln!("    {mark} {:>7.1}s  {label}", elapsed.as_secs_f64());
        }
    }
}

/// A shell-like rendering of a command, with the environment variables xtask set on it that matter
/// for reproducing the step by hand (never the S3 keys).
pub fn display_command(cmd: &Command) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        if key.contains("SECRET") || key.contains("ACCESS_KEY") {
            continue;
        }
        if let Some(value) = value {
            parts.push(format!("{key}={}", quote(value)));
        }
    }
    // `cargo` rather than the toolchain's full path that `$CARGO` holds: shorter, and what a
    // developer types to reproduce the step.
    let program = Path::new(cmd.get_program());
    if program.file_name() == Some(OsStr::new("cargo")) {
        parts.push("cargo".to_string());
    } else {
        parts.push(quote(cmd.get_program()));
    }
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_env_and_args_but_never_keys() {
        let mut cmd = Command::new("/opt/toolchain/bin/cargo");
        cmd.args(["test", "-p", "x", "--", "name with space"])
            .env("REGSTORE_S3_ENDPOINT", "http://127.0.0.1:1")
            .env("REGSTORE_S3_ACCESS_KEY", "AKIDVISIBLE")
            .env("REGSTORE_S3_SECRET_KEY", "supersecret");
        let shown = display_command(&cmd);
        assert!(
            shown.contains("REGSTORE_S3_ENDPOINT=http://127.0.0.1:1"),
            "{shown}"
        );
        assert!(
            shown.contains("cargo test -p x -- 'name with space'"),
            "{shown}"
        );
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(!shown.contains("AKIDVISIBLE"), "{shown}");
        assert!(!shown.contains("/opt/toolchain"), "{shown}");
    }

    #[test]
    fn keep_going_defers_failures_and_finish_reports_them() {
        let mut r = Runner::new(true);
        r.check("fails", &mut Command::new("false")).unwrap();
        r.check("passes", &mut Command::new("true")).unwrap();
        let err = r.finish().unwrap_err().to_string();
        assert!(err.contains("1 step(s) failed"), "{err}");
        assert!(err.contains("`fails`"), "{err}");

        let mut strict = Runner::new(false);
        assert!(strict.check("fails", &mut Command::new("false")).is_err());
    }
}
