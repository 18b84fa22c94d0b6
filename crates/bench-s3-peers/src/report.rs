//! Medians, ratios, target checks, and the Markdown/SVG renderings of a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::Sample;

const MIB: f64 = 1024.0 * 1024.0;

/// What was run, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub server: String,
    pub chunk_size: u64,
    pub concurrency: usize,
    pub size: u64,
    pub small_count: usize,
    pub small_size: usize,
    pub small_inflight: usize,
    pub walk_count: usize,
    /// Time limit of one resumed-upload attempt, seconds.
    #[serde(default)]
    pub attempt_timeout_secs: u64,
    pub reps: usize,
    pub driver_params: Vec<String>,
    /// object_store sent `UNSIGNED-PAYLOAD` (otherwise it hashed every body).
    #[serde(default)]
    pub object_store_unsigned_payload: bool,
    pub cpus: usize,
    pub total_secs: f64,
    pub unix_time: u64,
}

/// The median of one phase for one client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub phase: String,
    pub client: String,
    pub median_secs: f64,
    /// MiB/s for payload phases, operations/s for the others.
    pub rate: f64,
    pub unit: String,
    /// Highest peak RSS over the repetitions, MiB.
    pub peak_rss_mib: f64,
    /// Requests of the median repetition.
    pub requests: Option<BTreeMap<String, u64>>,
    pub samples_secs: Vec<f64>,
    /// Median CPU seconds (user + system) the client process spent per operation, when
    /// measured (not for curl).
    #[serde(default)]
    pub cpu_secs_per_op: Option<f64>,
}

/// A target of issue 6 and whether this run met it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

/// The whole report (the JSON file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub meta: Meta,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub samples: Vec<Sample>,
    /// Attempts that failed (the resumed-upload scenario's time limit); their scenario was not
    /// run again.
    #[serde(default)]
    pub failures: Vec<String>,
    /// The resumed-upload scenario's result, when it ran.
    #[serde(default)]
    pub resumed_upload: Option<ResumedUpload>,
}

/// Medians of the resumed-upload scenario and their ratio (the JSON form of its section).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumedUpload {
    pub fresh_median_secs: Option<f64>,
    pub resumed_median_secs: Option<f64>,
    /// resumed / fresh; `None` when an attempt failed.
    pub ratio: Option<f64>,
    pub max_ratio: f64,
    pub met: bool,
}

const PHASES: &[&str] = &[
    "stream-write",
    "stream-read",
    "move",
    "small-put",
    "small-get",
    "walk",
    "delete",
];
const CLIENTS: &[&str] = &["regstore", "object_store", "curl"];
/// The resumed-upload scenario's phases (regstore only), reported in a section of their own.
const UPLOAD_PHASES: &[&str] = &["upload-fresh", "upload-resumed"];
/// Target of issue 12: a resumed upload at most this many times a fresh one.
const RESUMED_MAX_RATIO: f64 = 1.5;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl Report {
    /// Aggregates the samples into medians and checks the targets.
    pub fn build(meta: Meta, samples: Vec<Sample>, failures: Vec<String>) -> Report {
        let mut rows = Vec::new();
        for phase in PHASES.iter().chain(UPLOAD_PHASES) {
            for client in CLIENTS {
                let mine: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| s.client == *client && s.phase.name == *phase)
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let mut secs: Vec<f64> = mine.iter().map(|s| s.phase.secs).collect();
                let samples_secs = secs.clone();
                let med = median(&mut secs);
                // The repetition closest to the median supplies the request counts.
                let closest = mine.iter().min_by(|a, b| {
                    (a.phase.secs - med)
                        .abs()
                        .total_cmp(&(b.phase.secs - med).abs())
                });
                let payload = matches!(
                    *phase,
                    "stream-write" | "stream-read" | "move" | "upload-fresh" | "upload-resumed"
                );
                let first = mine[0];
                let (rate, unit) = if payload {
                    (first.phase.bytes as f64 / MIB / med, "MiB/s")
                } else {
                    (first.phase.ops as f64 / med, "ops/s")
                };
                rows.push(Row {
                    phase: phase.to_string(),
                    client: client.to_string(),
                    median_secs: med,
                    rate,
                    unit: unit.into(),
                    peak_rss_mib: mine.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64
                        / 1024.0,
                    requests: closest.and_then(|s| s.phase.requests.clone()),
                    samples_secs,
                    cpu_secs_per_op: {
                        let mut cpu: Vec<f64> = mine
                            .iter()
                            .filter(|s| s.phase.cpu_secs > 0.0 && s.phase.ops > 0)
                            .map(|s| s.phase.cpu_secs / s.phase.ops as f64)
                            .collect();
                        (!cpu.is_empty()).then(|| median(&mut cpu))
                    },
                });
            }
        }
        let mut r = Report {
            meta,
            rows,
            checks: Vec::new(),
            samples,
            failures,
            resumed_upload: None,
        };
        r.checks = r.check_targets();
        r.resumed_upload = r
            .checks
            .iter()
            .find(|c| c.target.starts_with("resumed upload"))
            .map(|c| ResumedUpload {
                fresh_median_secs: r.row("upload-fresh", "regstore").map(|x| x.median_secs),
                resumed_median_secs: r.row("upload-resumed", "regstore").map(|x| x.median_secs),
                // No ratio from the attempts that did finish when one failed.
                ratio: r
                    .resumed_ratio()
                    .filter(|_| !c.measured.starts_with("failed")),
                max_ratio: RESUMED_MAX_RATIO,
                met: c.met == Some(true),
            });
        r
    }

    fn row(&self, phase: &str, client: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.phase == phase && r.client == client)
    }

    fn ratio(&self, phase: &str, peer: &str) -> Option<f64> {
        Some(self.row(phase, "regstore")?.rate / self.row(phase, peer)?.rate)
    }

    /// Median seconds of a resumed upload over those of a fresh one.
    pub fn resumed_ratio(&self) -> Option<f64> {
        Some(
            self.row("upload-resumed", "regstore")?.median_secs
                / self.row("upload-fresh", "regstore")?.median_secs,
        )
    }

    fn check_targets(&self) -> Vec<Check> {
        let mut c = Vec::new();
        let upload_failures: Vec<&String> = self
            .failures
            .iter()
            .filter(|f| f.contains("upload-"))
            .collect();
        if !upload_failures.is_empty() || self.resumed_ratio().is_some() {
            let target = format!(
                "resumed upload (7 MiB closed + 20 MiB appended) ≤ {RESUMED_MAX_RATIO}× fresh 27 MiB upload, chunksize {} MiB",
                self.meta.chunk_size / (1024 * 1024)
            );
            c.push(match self.resumed_ratio() {
                _ if !upload_failures.is_empty() => Check {
                    target,
                    measured: format!(
                        "failed: {}",
                        upload_failures
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    met: Some(false),
                },
                Some(r) => Check {
                    target,
                    measured: format!("{r:.2}×"),
                    met: Some(r <= RESUMED_MAX_RATIO),
                },
                None => unreachable!("guarded above"),
            });
        }
        let mut ratio_check = |phase: &str, peer: &str, want: f64| {
            let got = self.ratio(phase, peer);
            c.push(Check {
                target: format!("{phase}: regstore ≥ {want}× {peer}"),
                measured: got.map_or("n/a".into(), |g| format!("{g:.2}×")),
                met: got.map(|g| g >= want),
            });
        };
        for phase in ["stream-write", "stream-read"] {
            ratio_check(phase, "object_store", 1.1);
            ratio_check(phase, "curl", 0.8);
        }
        ratio_check("small-put", "object_store", 1.0);
        ratio_check("small-get", "object_store", 1.0);
        if let Some(m) = self.row("move", "regstore") {
            let payload_ops: u64 = m
                .requests
                .iter()
                .flatten()
                .filter(|(k, _)| matches!(k.as_str(), "GetObject" | "PutObject" | "UploadPart"))
                .map(|(_, v)| *v)
                .sum();
            c.push(Check {
                target: "move: 0 payload bytes through the client (only CopyObject/UploadPartCopy carry data)".into(),
                measured: format!("{payload_ops} GetObject/PutObject/UploadPart requests; {:?}", m.requests.clone().unwrap_or_default()),
                met: Some(payload_ops == 0),
            });
        }
        let n = self.meta.walk_count as u64;
        let want = n.div_ceil(1000);
        for (phase, ops) in [
            ("walk", &["ListObjectsV2"][..]),
            ("delete", &["ListObjectsV2", "DeleteObjects"][..]),
        ] {
            if let Some(r) = self.row(phase, "regstore") {
                let req = r.requests.clone().unwrap_or_default();
                let counts: Vec<String> = ops
                    .iter()
                    .map(|o| format!("{o} {}", req.get(*o).copied().unwrap_or(0)))
                    .collect();
                let others: u64 = req
                    .iter()
                    .filter(|(k, _)| !ops.contains(&k.as_str()))
                    .map(|(_, v)| *v)
                    .sum();
                let met = ops
                    .iter()
                    .all(|o| req.get(*o).copied().unwrap_or(0) == want)
                    && others == 0;
                c.push(Check {
                    target: format!(
                        "{phase} of {n}: {want} request(s) of each of {}",
                        ops.join(", ")
                    ),
                    measured: format!("{}; other requests {others}", counts.join(", ")),
                    met: Some(met),
                });
            }
        }
        if let Some(w) = self.row("stream-write", "regstore") {
            let bound =
                (self.meta.chunk_size as f64 * (self.meta.concurrency as f64 + 2.0)) / MIB + 32.0;
            c.push(Check {
                target: format!(
                    "peak RSS of a {} MiB upload ≤ chunksize × (in-flight + 2) + 32 MiB = {bound:.0} MiB",
                    self.meta.size / (1024 * 1024)
                ),
                measured: format!("{:.0} MiB", w.peak_rss_mib),
                met: Some(w.peak_rss_mib <= bound),
            });
        }
        c
    }

    /// The results table, the targets and the request counts, as Markdown.
    pub fn markdown(&self) -> String {
        let m = &self.meta;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Server: {}; {} CPU(s); object {} MiB, part size {} MiB, {} parts in flight; \
             {} × {} B small objects, {} in flight; walk/delete of {}; {} repetitions \
             (medians; small and walk/delete run twice per repetition, A B B A); run took {:.0} s. Driver parameters: {}. object_store payload: {}.\n",
            m.server,
            m.cpus,
            m.size / (1024 * 1024),
            m.chunk_size / (1024 * 1024),
            m.concurrency,
            m.small_count,
            m.small_size,
            m.small_inflight,
            m.walk_count,
            m.reps,
            m.total_secs,
            if m.driver_params.is_empty() {
                "defaults".to_string()
            } else {
                m.driver_params.join(", ")
            },
            if m.object_store_unsigned_payload {
                "UNSIGNED-PAYLOAD"
            } else {
                "SHA-256 signed (its default)"
            }
        );
        let _ = writeln!(
            s,
            "| phase | regstore | object_store | curl | regstore / object_store | regstore / curl | peak RSS MiB (regstore / object_store / curl) |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
        for phase in PHASES {
            let cell = |client: &str| {
                self.row(phase, client)
                    .map_or("n/a".to_string(), |r| format!("{:.1} {}", r.rate, r.unit))
            };
            let rss = |client: &str| {
                self.row(phase, client)
                    .map_or("n/a".to_string(), |r| format!("{:.0}", r.peak_rss_mib))
            };
            let ratio = |peer: &str| {
                self.ratio(phase, peer)
                    .map_or("n/a".to_string(), |r| format!("{r:.2}×"))
            };
            if self.row(phase, "regstore").is_none() && self.row(phase, "object_store").is_none() {
                continue;
            }
            let _ = writeln!(
                s,
                "| {phase} | {} | {} | {} | {} | {} | {} / {} / {} |",
                cell("regstore"),
                cell("object_store"),
                cell("curl"),
                ratio("object_store"),
                ratio("curl"),
                rss("regstore"),
                rss("object_store"),
                rss("curl"),
            );
        }
        let _ = writeln!(
            s,
            "\nClient CPU per operation (user + system time of the client process, median; \
             unlike the rates above, hardly affected by the server or the machine's load):\n"
        );
        let _ = writeln!(
            s,
            "| phase | regstore | object_store | regstore / object_store |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for phase in PHASES {
            let cpu = |client: &str| self.row(phase, client).and_then(|r| r.cpu_secs_per_op);
            let (Some(a), Some(b)) = (cpu("regstore"), cpu("object_store")) else {
                continue;
            };
            let show = |v: f64| {
                if v >= 0.01 {
                    format!("{:.0} ms", v * 1e3)
                } else {
                    format!("{:.0} µs", v * 1e6)
                }
            };
            let _ = writeln!(s, "| {phase} | {} | {} | {:.2}× |", show(a), show(b), a / b);
        }
        let _ = writeln!(s, "\nTargets (issue 6):\n");
        let _ = writeln!(s, "| target | measured | met |");
        let _ = writeln!(s, "|---|---|---|");
        for c in &self.checks {
            let met = match c.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            };
            let _ = writeln!(s, "| {} | {} | {met} |", c.target, c.measured);
        }
        self.resumed_markdown(&mut s);
        let _ = writeln!(s, "\nHTTP requests per operation (median repetition):\n");
        let _ = writeln!(s, "| phase | regstore | object_store |");
        let _ = writeln!(s, "|---|---|---|");
        for phase in PHASES {
            let req = |client: &str| {
                self.row(phase, client)
                    .and_then(|r| r.requests.as_ref())
                    .map_or("n/a".to_string(), |m| {
                        m.iter()
                            .map(|(k, v)| format!("{k} {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
            };
            if self.row(phase, "regstore").is_none() {
                continue;
            }
            let _ = writeln!(
                s,
                "| {phase} | {} | {} |",
                req("regstore"),
                req("object_store")
            );
        }
        s
    }

    /// The resumed-upload section: both variants' median times, the ratio and their requests.
    fn resumed_markdown(&self, s: &mut String) {
        if self.resumed_ratio().is_none() && !self.failures.iter().any(|f| f.contains("upload-")) {
            return;
        }
        let _ = writeln!(
            s,
            "\nResumed upload (regstore only, 32 KiB writes, chunksize {} MiB, at most {} s per attempt; A B B A):\n",
            self.meta.chunk_size / (1024 * 1024),
            self.meta.attempt_timeout_secs
        );
        let _ = writeln!(
            s,
            "| variant | median | samples | requests (median repetition) |"
        );
        let _ = writeln!(s, "|---|---:|---|---|");
        for phase in UPLOAD_PHASES {
            let Some(r) = self.row(phase, "regstore") else {
                let _ = writeln!(s, "| {phase} | n/a | | |");
                continue;
            };
            let samples: Vec<String> = r.samples_secs.iter().map(|v| format!("{v:.2}")).collect();
            let req = r
                .requests
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>();
            let _ = writeln!(
                s,
                "| {phase} | {:.3} s | {} | {} |",
                r.median_secs,
                samples.join(", "),
                req.join(", ")
            );
        }
        match self.resumed_ratio() {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "\nresumed / fresh: **{r:.2}×** (target ≤ {RESUMED_MAX_RATIO}×)"
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "\nresumed / fresh: n/a (an attempt failed, see the targets)"
                );
            }
        }
    }

    /// A grouped bar chart: one group per phase, bars scaled to the fastest client of that
    /// phase (the phases have different units), each bar labelled with its rate.
    pub fn svg(&self) -> String {
        let colors = [
            ("regstore", "#2b6cb0"),
            ("object_store", "#dd6b20"),
            ("curl", "#718096"),
        ];
        let phases: Vec<&str> = PHASES
            .iter()
            .copied()
            .filter(|p| self.rows.iter().any(|r| r.phase == *p))
            .collect();
        let bar_h = 16.0;
        let group_h = bar_h * 3.0 + 14.0;
        let left = 120.0;
        let width = 760.0;
        let plot_w = 480.0;
        let top = 50.0;
        let height = top + group_h * phases.len() as f64 + 20.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="20" font-size="14" font-weight="bold">regstore vs object_store vs curl on {} (medians of {}; bars relative to the fastest per phase)</text>"#,
            xml(&self.meta.server),
            self.meta.reps
        );
        for (i, (name, color)) in colors.iter().enumerate() {
            let x = 10.0 + i as f64 * 130.0;
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="30" width="12" height="12" fill="{color}"/><text x="{}" y="40">{name}</text>"#,
                x + 16.0
            );
        }
        for (g, phase) in phases.iter().enumerate() {
            let y0 = top + g as f64 * group_h;
            let _ = writeln!(
                s,
                r#"<text x="10" y="{}" font-weight="bold">{phase}</text>"#,
                y0 + bar_h * 1.5 + 4.0
            );
            let max = self
                .rows
                .iter()
                .filter(|r| r.phase == *phase)
                .map(|r| r.rate)
                .fold(0.0f64, f64::max);
            for (i, (client, color)) in colors.iter().enumerate() {
                let y = y0 + i as f64 * bar_h;
                match self.row(phase, client) {
                    Some(r) if max > 0.0 && r.rate.is_finite() => {
                        let w = (r.rate / max * plot_w).max(1.0);
                        let _ = writeln!(
                            s,
                            r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{:.1}">{:.1} {}</text>"#,
                            bar_h - 2.0,
                            left + w + 4.0,
                            y + bar_h - 4.0,
                            r.rate,
                            r.unit
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            s,
                            r##"<text x="{left}" y="{:.1}" fill="#999">{client}: n/a</text>"##,
                            y + bar_h - 4.0
                        );
                    }
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            server: "test".into(),
            chunk_size: 10 << 20,
            concurrency: 4,
            size: 1 << 30,
            small_count: 0,
            small_size: 0,
            small_inflight: 0,
            walk_count: 0,
            attempt_timeout_secs: 120,
            reps: 1,
            driver_params: Vec::new(),
            object_store_unsigned_payload: false,
            cpus: 2,
            total_secs: 0.0,
            unix_time: 0,
        }
    }

    fn upload(name: &str, secs: f64) -> Sample {
        Sample {
            rep: 0,
            client: "regstore".into(),
            phase: crate::child::Phase {
                name: name.into(),
                secs,
                bytes: 27 << 20,
                ops: 1,
                requests: Some(BTreeMap::from([("UploadPart".to_owned(), 3)])),
                cpu_secs: 0.1,
            },
            peak_rss_kib: 0,
        }
    }

    fn resumed_check(r: &Report) -> &Check {
        match r
            .checks
            .iter()
            .find(|c| c.target.starts_with("resumed upload"))
        {
            Some(c) => c,
            None => panic!("no resumed-upload check in {:?}", r.checks),
        }
    }

    #[test]
    fn resumed_ratio_is_checked_against_the_target() {
        let ok = Report::build(
            meta(),
            vec![upload("upload-fresh", 2.0), upload("upload-resumed", 2.8)],
            Vec::new(),
        );
        assert_eq!(ok.resumed_ratio(), Some(1.4));
        assert_eq!(resumed_check(&ok).met, Some(true));
        let json = ok.resumed_upload.as_ref().map(|u| (u.ratio, u.met));
        assert_eq!(json, Some((Some(1.4), true)));
        assert!(ok.markdown().contains("resumed / fresh: **1.40×**"));
        let slow = Report::build(
            meta(),
            vec![upload("upload-fresh", 2.0), upload("upload-resumed", 3.2)],
            Vec::new(),
        );
        assert_eq!(resumed_check(&slow).met, Some(false));
    }

    #[test]
    fn a_failed_attempt_fails_the_resumed_check() {
        let r = Report::build(
            meta(),
            vec![upload("upload-fresh", 2.0)],
            vec!["rep 0 upload-resumed: not done after 120 s".into()],
        );
        let c = resumed_check(&r);
        assert_eq!(c.met, Some(false));
        assert!(c.measured.contains("not done after 120 s"), "{c:?}");
        assert!(r.markdown().contains("resumed / fresh: n/a"));
        let json = r.resumed_upload.as_ref().map(|u| (u.ratio, u.met));
        assert_eq!(json, Some((None, false)));
    }

    #[test]
    fn no_resumed_check_when_the_scenario_did_not_run() {
        let r = Report::build(meta(), Vec::new(), Vec::new());
        assert!(r.checks.iter().all(|c| !c.target.starts_with("resumed")));
        assert!(r.resumed_upload.is_none());
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
