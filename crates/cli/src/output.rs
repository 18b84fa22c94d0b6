//! Formatting for humans (sizes, times, tables) and progress bars.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use regstore_driver_api::FileInfo;
use serde_json::{json, Value};

/// Transfers at or below this size get no progress bar (they finish before it would draw).
pub const PROGRESS_THRESHOLD: u64 = 1024 * 1024;

/// `1536` → `1.5 KiB`; exact bytes below 1 KiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A time as RFC 3339 in UTC with second precision (`2026-11-23T15:29:54Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A [`FileInfo`] as the JSON object every command uses.
pub fn info_json(info: &FileInfo) -> Value {
    json!({
        "path": info.path.as_str(),
        "type": if info.is_dir { "directory" } else { "file" },
        "size": info.size,
        "mod_time": info.mod_time.map(rfc3339),
    })
}

/// A `ls -l`-style line: type, size, time, path.
pub fn info_line(info: &FileInfo) -> String {
    let time = info.mod_time.map(rfc3339).unwrap_or_else(|| "-".into());
    if info.is_dir {
        format!("d {:>14} {:<20} {}/", "-", time, info.path)
    } else {
        format!("- {:>14} {:<20} {}", info.size, time, info.path)
    }
}

/// Whether progress bars may be drawn (stderr is a terminal).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// A byte progress bar on stderr for a transfer of `total` bytes, hidden when stderr is not a
/// terminal or the transfer is small.
pub fn byte_progress(total: u64, label: &str) -> ProgressBar {
    if total <= PROGRESS_THRESHOLD || !stderr_is_tty() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(label.to_owned());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_966_194)),
            "2026-11-29T15:29:54Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
