//! Reading the JSON credential documents of the container endpoint, instance metadata and
//! `credential_process`. Field by field, so no parser message can quote a secret value.

use rusoto_credential::AwsCredentials;
use serde_json::Value;

use super::http::scrub;
use super::sts::parse_expiration;

fn string_field<'a>(doc: &'a Value, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| doc.get(*n).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// `AccessKeyId`, `SecretAccessKey`, `Token` (or `SessionToken`) and `Expiration` of `body`.
/// `Expiration` may be absent (credentials that do not expire); an expired one is accepted
/// and refreshed by the cache on the next request.
pub(crate) fn credentials(body: &[u8], process: bool) -> Result<AwsCredentials, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| "not a JSON document".to_owned())?;
    if !doc.is_object() {
        return Err("not a JSON object".into());
    }
    if process {
        if doc.get("Version").and_then(Value::as_i64) != Some(1) {
            return Err("Version is not 1".into());
        }
    } else if let Some(code) = doc.get("Code").and_then(Value::as_str) {
        if code != "Success" {
            let message = doc.get("Message").and_then(Value::as_str).unwrap_or("");
            return Err(format!("Code {code}: {message}"));
        }
    }
    let id = string_field(&doc, &["AccessKeyId"]).ok_or("AccessKeyId is missing")?;
    let secret = string_field(&doc, &["SecretAccessKey"]).ok_or("SecretAccessKey is missing")?;
    let token = string_field(&doc, &["Token", "SessionToken"]).map(str::to_owned);
    let expires = match string_field(&doc, &["Expiration"]) {
        Some(s) => Some(parse_expiration(s)?),
        None => None,
    };
    Ok(AwsCredentials::new(id, secret, token, expires))
}

/// `, code C: message M` of an error document (`code`/`message` or `Code`/`Message`), with
/// `secrets` removed; empty when the body is not one.
pub(crate) fn error_code(body: &[u8], secrets: &[&str]) -> String {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let code = string_field(&doc, &["code", "Code"]);
    let message = string_field(&doc, &["message", "Message"]);
    let text = match (code, message) {
        (Some(c), Some(m)) => format!(", {c}: {m}"),
        (Some(c), None) => format!(", {c}"),
        (None, Some(m)) => format!(", {m}"),
        (None, None) => String::new(),
    };
    scrub(&text, secrets).chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let c = credentials(
            br#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2030-01-01T00:00:00Z"}"#,
            false,
        )
        .unwrap();
        assert_eq!(c.token().as_deref(), Some("T"));
        assert!(c.expires_at().is_some());
        let e = credentials(
            br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"no"}"#,
            false,
        )
        .err()
        .unwrap();
        assert!(e.contains("AssumeRoleUnauthorizedAccess"), "{e}");
        let e = credentials(br#"{"AccessKeyId":"A","SecretAccessKey":7}"#, false)
            .err()
            .unwrap();
        assert_eq!(e, "SecretAccessKey is missing");
        assert!(credentials(
            br#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"S"}"#,
            true
        )
        .is_err());
        assert!(credentials(b"SECRET-NOT-JSON", false)
            .err()
            .is_some_and(|e| !e.contains("SECRET")));
        assert_eq!(
            error_code(
                br#"{"code":"Denied","message":"token tok-1234 bad"}"#,
                &["tok-1234"]
            ),
            ", Denied: token <redacted> bad"
        );
    }
}
