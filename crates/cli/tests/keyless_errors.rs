//! `regstore` with an S3 `config.yml` without keys, when the credential source the environment
//! selects is broken: a missing web-identity token file, a role STS refuses, an instance
//! metadata endpoint that never answers. Each must end with exit status 1 and one clear line
//! naming the source, within the configured time limits — never a panic or a hang.
//!
//! No S3 server is needed: credentials are resolved before the first request is signed.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::Sandbox;

/// A keyless S3 config whose endpoint is never reached.
fn keyless_config(sb: &Sandbox) -> String {
    sb.file(
        "keyless.yml",
        "version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n    \
         regionendpoint: http://127.0.0.1:9\n    bucket: keyless\n    v4auth: true\n",
    )
    .to_str()
    .unwrap()
    .to_owned()
}

/// Runs `regstore put` with exactly `vars` as the AWS environment (HOME inside the sandbox).
fn put(sb: &Sandbox, cfg: &str, vars: &[(&str, &str)]) -> (common::Run, Duration) {
    let file = sb.file("blob", "data");
    let home = sb.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut env: Vec<(&str, &str)> = vec![
        ("HOME", home.to_str().unwrap()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    env.extend_from_slice(vars);
    let t = Instant::now();
    let run = sb.run_clean_aws(
        &["--config", cfg, "put", "/docker/x", file.to_str().unwrap()],
        &env,
    );
    (run, t.elapsed())
}

/// The single error line of a failed run (exit status 1), checked for the source name.
fn one_line_naming(run: &common::Run, source: &str) -> String {
    let line = run.fails_with(1);
    assert!(line.contains(source), "the line names {source}: {line}");
    line
}

#[test]
fn missing_web_identity_token_file() {
    let sb = Sandbox::new();
    let cfg = keyless_config(&sb);
    let (run, took) = put(
        &sb,
        &cfg,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/regstore/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/registry"),
        ],
    );
    let line = one_line_naming(&run, "web identity");
    assert!(line.contains("/nonexistent/regstore/token"), "{line}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// An STS stand-in refusing every call with `AccessDenied`, as STS answers a role the caller
/// may not assume. Returns its URL.
fn refusing_sts() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 8192];
            let mut seen = Vec::new();
            // Head, then the form body of Content-Length (small).
            loop {
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let body = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                        <Type>Sender</Type><Code>AccessDenied</Code><Message>User is not \
                        authorized to perform: sts:AssumeRole on resource: \
                        arn:aws:iam::123456789012:role/wrong</Message></Error>\
                        <RequestId>r</RequestId></ErrorResponse>";
            let _ = write!(
                s,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn profile_with_a_role_sts_refuses() {
    let sb = Sandbox::new();
    let cfg = keyless_config(&sb);
    let config = sb.file(
        "aws-config",
        "[profile app]\nrole_arn = arn:aws:iam::123456789012:role/wrong\nsource_profile = base\n",
    );
    let creds = sb.file(
        "aws-credentials",
        "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-secret-value\n",
    );
    let sts = refusing_sts();
    let (run, took) = put(
        &sb,
        &cfg,
        &[
            ("AWS_PROFILE", "app"),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", &sts),
        ],
    );
    let line = one_line_naming(&run, "profile");
    assert!(line.contains("AccessDenied"), "{line}");
    assert!(!run.stderr.contains("base-secret-value"), "{}", run.stderr);
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn instance_metadata_that_hangs() {
    let sb = Sandbox::new();
    let cfg = keyless_config(&sb);
    // Accepts connections (the kernel's backlog) and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (run, took) = put(
        &sb,
        &cfg,
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
        ],
    );
    one_line_naming(&run, "instance metadata");
    // 1 s per IMDS attempt, a few attempts: well under the bound.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    drop(l);
    let _ = std::io::stdout().flush();
}
