//! `credential_process` of a profile: a command run through `sh -c` that prints a Version 1
//! JSON credentials document. The command line is never quoted in messages (it may carry a
//! password); its stderr is, shortened.

use std::process::Stdio;
use std::time::Duration;

use rusoto_credential::AwsCredentials;

use super::json;

/// Runs `command` within `timeout` (then it is killed) and reads its answer.
pub(crate) async fn run(command: &str, timeout: Duration) -> Result<AwsCredentials, String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("credential_process could not start: {e}"))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("credential_process did not finish within {timeout:?}"))?
        .map_err(|e| format!("credential_process: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "credential_process failed ({}): {}",
            output.status,
            super::http::excerpt(&output.stderr)
        ));
    }
    json::credentials(&output.stdout, true)
        .map_err(|e| format!("credential_process printed an unusable document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn process_answers_errors_and_time_limit() {
        let t = Duration::from_secs(5);
        let c = run(
            r#"echo '{"Version":1,"AccessKeyId":"AKP","SecretAccessKey":"SKP","SessionToken":"TP","Expiration":"2099-01-01T00:00:00Z"}'"#,
            t,
        )
        .await
        .unwrap();
        assert_eq!(c.aws_access_key_id(), "AKP");
        assert_eq!(c.token().as_deref(), Some("TP"));
        let e = run("echo boom >&2; exit 3", t).await.err().unwrap();
        assert!(e.contains("boom") && e.contains("exit status: 3"), "{e}");
        let started = std::time::Instant::now();
        let e = run("sleep 30", Duration::from_millis(300))
            .await
            .err()
            .unwrap();
        assert!(e.contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
