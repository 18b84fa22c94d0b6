//! Shared config profiles: `AWS_CONFIG_FILE` (default `~/.aws/config`) and
//! `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`), profile `AWS_PROFILE` (else
//! `AWS_DEFAULT_PROFILE`, else `default`).
//!
//! A profile gives static keys, a `credential_process`, a `web_identity_token_file` with
//! `role_arn`, or a `role_arn` assumed with the credentials of its `source_profile` (followed
//! recursively) or its `credential_source` (`Environment`, `Ec2InstanceMetadata`,
//! `EcsContainer`). SSO and MFA need an interactive login and are reported as unsupported.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use rusoto_credential::AwsCredentials;

use super::chain::{Chain, Found, SourceError};
use super::sts::{self, AssumeRoleExtras};
use super::{container, env, process, web_identity};

/// Profile name → key (lower case) → value.
pub(crate) type Profiles = HashMap<String, HashMap<String, String>>;

/// Parses one file. In the config file a profile is `[profile NAME]` or `[default]` (where
/// `[profile default]` wins); in the credentials file it is `[NAME]`. Other sections
/// (`[sso-session …]`, `[services …]`) and indented sub-properties are skipped.
pub(crate) fn parse(text: &str, config_file: bool) -> Profiles {
    let mut prefixed: Profiles = HashMap::new();
    let mut bare: Profiles = HashMap::new();
    // (profile name, whether the `profile ` form named it)
    let mut current: Option<(String, bool)> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let inner = inner.trim();
            current = if config_file {
                match inner.strip_prefix("profile") {
                    Some(rest) if rest.starts_with([' ', '\t']) => {
                        Some((rest.trim().to_owned(), true))
                    }
                    _ if inner == "default" => Some(("default".to_owned(), false)),
                    _ => None,
                }
            } else if inner.starts_with("profile ") {
                None
            } else {
                Some((inner.to_owned(), false))
            };
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            continue; // a sub-property (e.g. `s3 =` followed by indented settings)
        }
        let (Some((name, is_prefixed)), Some((k, v))) = (&current, line.split_once('=')) else {
            continue;
        };
        let value = strip_comment(v.trim());
        let target = if *is_prefixed {
            &mut prefixed
        } else {
            &mut bare
        };
        target
            .entry(name.clone())
            .or_default()
            .insert(k.trim().to_ascii_lowercase(), value.to_owned());
    }
    for (name, keys) in prefixed {
        bare.insert(name, keys); // `[profile default]` replaces `[default]`
    }
    bare
}

/// Drops an inline ` #` / ` ;` comment.
fn strip_comment(v: &str) -> &str {
    let cut = v
        .char_indices()
        .find(|&(i, c)| (c == '#' || c == ';') && i > 0 && v[..i].ends_with([' ', '\t']))
        .map(|(i, _)| i);
    match cut {
        Some(i) => v[..i].trim_end(),
        None => v,
    }
}

/// The file paths, from their variables or under `HOME`.
fn paths(chain: &Chain) -> Vec<(PathBuf, bool)> {
    let home = chain.vars.get("HOME").map(PathBuf::from);
    let expand = |p: &str| -> Option<PathBuf> {
        match p.strip_prefix("~/") {
            Some(rest) => home.as_ref().map(|h| h.join(rest)),
            None => Some(PathBuf::from(p)),
        }
    };
    let config = match chain.vars.get("AWS_CONFIG_FILE") {
        Some(p) => expand(p),
        None => home.as_ref().map(|h| h.join(".aws/config")),
    };
    let creds = match chain.vars.get("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => expand(p),
        None => home.as_ref().map(|h| h.join(".aws/credentials")),
    };
    let mut out = Vec::new();
    if let Some(c) = config {
        out.push((c, true));
    }
    if let Some(c) = creds {
        out.push((c, false));
    }
    out
}

/// Loads and merges both files (the credentials file wins key by key). Missing files are
/// fine; unreadable ones are errors.
async fn load(chain: &Chain) -> Result<(Profiles, String), String> {
    let mut merged: Profiles = HashMap::new();
    let mut shown = Vec::new();
    for (path, config_file) in paths(chain) {
        shown.push(path.display().to_string());
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        for (name, keys) in parse(&text, config_file) {
            merged.entry(name).or_default().extend(keys);
        }
    }
    Ok((merged, shown.join(", ")))
}

/// The profile source of the chain.
pub(crate) async fn from_profile(chain: &Chain) -> Result<Found, SourceError> {
    let explicit = chain
        .vars
        .get("AWS_PROFILE")
        .or_else(|| chain.vars.get("AWS_DEFAULT_PROFILE"));
    let name = explicit.unwrap_or("default");
    let (profiles, files) = load(chain)
        .await
        .map_err(|e| SourceError::new(format!("profile {name:?}"), e))?;
    let source = format!("profile {name:?} ({files})");
    if !profiles.contains_key(name) {
        return match explicit {
            Some(_) => Err(SourceError::new(source, "no such profile")),
            None => Ok(Found::Absent(format!("no [default] profile in {files}"))),
        };
    }
    let mut visited = Vec::new();
    match resolve(chain, &profiles, name, &mut visited).await {
        Ok(Some(c)) => Ok(Found::Creds(c)),
        Ok(None) => Ok(Found::Absent(format!(
            "{source} holds no credential settings"
        ))),
        Err(e) => Err(SourceError::new(source, e)),
    }
}

type Resolved<'a> =
    Pin<Box<dyn Future<Output = Result<Option<AwsCredentials>, String>> + Send + 'a>>;

/// Credentials of profile `name`; `visited` is the chain of profiles that led here.
fn resolve<'a>(
    chain: &'a Chain,
    profiles: &'a Profiles,
    name: &'a str,
    visited: &'a mut Vec<String>,
) -> Resolved<'a> {
    Box::pin(async move {
        let Some(p) = profiles.get(name) else {
            return Err(format!(
                "source_profile {name:?} (from {:?}) does not exist",
                visited.last().map(String::as_str).unwrap_or("")
            ));
        };
        let first_hop = visited.is_empty();
        visited.push(name.to_owned());
        let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let static_keys = match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Some(AwsCredentials::new(
                id,
                secret,
                get("aws_session_token").map(str::to_owned),
                None,
            )),
            _ => None,
        };
        // In a source profile, its own static keys win over its role (the SDKs agree).
        if !first_hop && static_keys.is_some() {
            return Ok(static_keys);
        }
        if let Some(role) = get("role_arn") {
            if get("mfa_serial").is_some() {
                return Err(format!(
                    "profile {name:?}: mfa_serial is set, but a registry cannot type an MFA \
                     code (unsupported)"
                ));
            }
            let session = match get("role_session_name") {
                Some(s) => {
                    sts::check_session_name(s)?;
                    s.to_owned()
                }
                None => sts::default_session_name(),
            };
            let base = match (
                get("source_profile"),
                get("credential_source"),
                get("web_identity_token_file"),
            ) {
                (Some(_), Some(_), _) => {
                    return Err(format!(
                        "profile {name:?} sets both source_profile and credential_source"
                    ))
                }
                (None, None, Some(file)) => {
                    let source = format!("web identity of profile {name:?}");
                    return web_identity::fetch(chain, &source, file, role, Some(&session))
                        .await
                        .map(Some)
                        .map_err(|e| e.to_string());
                }
                (Some(src), None, _) if src == name => static_keys.ok_or_else(|| {
                    format!("profile {name:?} is its own source_profile but has no static keys")
                })?,
                (Some(src), None, _) => {
                    if visited.iter().any(|v| v == src) {
                        return Err(format!(
                            "source_profile loop: {} -> {src}",
                            visited.join(" -> ")
                        ));
                    }
                    resolve(chain, profiles, src, visited)
                        .await?
                        .ok_or_else(|| format!("source_profile {src:?} holds no credentials"))?
                }
                (None, Some(cs), _) => credential_source(chain, name, cs).await?,
                (None, None, None) => {
                    return Err(format!(
                        "profile {name:?} has role_arn but neither source_profile nor \
                         credential_source"
                    ))
                }
            };
            let extras = AssumeRoleExtras {
                external_id: get("external_id").map(str::to_owned),
                duration_seconds: match get("duration_seconds") {
                    Some(d) => Some(d.parse::<i64>().map_err(|_| {
                        format!("profile {name:?}: duration_seconds {d:?} is not a number")
                    })?),
                    None => None,
                },
            };
            return assume(chain, &base, role, &session, &extras)
                .await
                .map(Some);
        }
        if static_keys.is_some() {
            return Ok(static_keys);
        }
        if get("web_identity_token_file").is_some() {
            return Err(format!(
                "profile {name:?} has web_identity_token_file but no role_arn"
            ));
        }
        if let Some(cmd) = get("credential_process") {
            return process::run(cmd, chain.opts.process_timeout)
                .await
                .map(Some)
                .map_err(|e| format!("profile {name:?}: {e}"));
        }
        if p.keys().any(|k| k.starts_with("sso_")) {
            return Err(format!(
                "profile {name:?} uses AWS SSO, which needs an interactive login (unsupported)"
            ));
        }
        Ok(None)
    })
}

/// The base credentials named by `credential_source`.
async fn credential_source(chain: &Chain, name: &str, cs: &str) -> Result<AwsCredentials, String> {
    let found = if cs.eq_ignore_ascii_case("Environment") {
        env::from_env(&chain.vars)
    } else if cs.eq_ignore_ascii_case("Ec2InstanceMetadata") {
        chain.imds.credentials(chain).await
    } else if cs.eq_ignore_ascii_case("EcsContainer") {
        container::from_env(chain).await
    } else {
        return Err(format!(
            "profile {name:?}: credential_source {cs:?} is not Environment, \
             Ec2InstanceMetadata or EcsContainer"
        ));
    };
    match found {
        Ok(Found::Creds(c)) => Ok(c),
        Ok(Found::Absent(why)) => Err(format!(
            "profile {name:?}: credential_source {cs} has no credentials: {why}"
        )),
        Err(e) => Err(format!("profile {name:?}: credential_source {cs}: {e}")),
    }
}

/// `AssumeRole` with retries of transient failures.
async fn assume(
    chain: &Chain,
    base: &AwsCredentials,
    role: &str,
    session: &str,
    extras: &AssumeRoleExtras,
) -> Result<AwsCredentials, String> {
    let target = sts::target(&chain.vars, &chain.opts.region);
    let attempts = chain.opts.sts_attempts.max(1);
    let mut backoff = chain.opts.retry_base;
    let mut attempt = 1;
    loop {
        match sts::assume_role(chain, &target, base, role, session, extras).await {
            Ok(c) => return Ok(c),
            Err(f) if f.transient && attempt < attempts => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(f) => {
                return Err(format!(
                    "AssumeRole {role} at {} failed: {}",
                    target.endpoint, f.message
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::chain::Options;
    use crate::credentials::env::Vars;

    #[test]
    fn parses_sections_comments_and_precedence() {
        let config = "\
# comment
[default]
region = us-west-1
aws_access_key_id = BARE
[profile default]
aws_access_key_id = PREFIXED
[profile dev]
role_arn = arn:aws:iam::123:role/dev ; why
source_profile=base
s3 =
  max_concurrent_requests = 2
[sso-session corp]
sso_region = x
[ignored]
a = b
";
        let p = parse(config, true);
        assert_eq!(p["default"]["aws_access_key_id"], "PREFIXED");
        assert!(
            !p["default"].contains_key("region"),
            "[profile default] replaces [default]"
        );
        assert_eq!(p["dev"]["role_arn"], "arn:aws:iam::123:role/dev");
        assert_eq!(p["dev"]["source_profile"], "base");
        assert!(!p["dev"].contains_key("max_concurrent_requests"));
        assert!(!p.contains_key("ignored") && !p.contains_key("corp"));
        let creds = parse("[base]\nAWS_ACCESS_KEY_ID = K\n[profile x]\na=b\n", false);
        assert_eq!(creds["base"]["aws_access_key_id"], "K");
        assert!(!creds.contains_key("x"));
    }

    fn chain_with(dir: &std::path::Path, config: &str, creds: &str, profile: &str) -> Chain {
        let cfg = dir.join("config");
        let crd = dir.join("credentials");
        std::fs::write(&cfg, config).unwrap();
        std::fs::write(&crd, creds).unwrap();
        let vars = Vars::from_pairs(&[
            ("AWS_CONFIG_FILE", cfg.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", crd.to_str().unwrap()),
            ("AWS_PROFILE", profile),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        Chain::new(vars, Options::new("us-east-1"))
    }

    async fn outcome(chain: &Chain) -> Result<Option<AwsCredentials>, String> {
        match from_profile(chain).await {
            Ok(Found::Creds(c)) => Ok(Some(c)),
            Ok(Found::Absent(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn static_merge_and_configuration_errors() {
        let dir = tempfile::tempdir().unwrap();
        // The credentials file wins key by key.
        let c = chain_with(
            dir.path(),
            "[profile app]\naws_access_key_id = FROMCONFIG\naws_secret_access_key = S1\n",
            "[app]\naws_access_key_id = FROMCREDS\n",
            "app",
        );
        let got = outcome(&c).await.unwrap().unwrap();
        assert_eq!(got.aws_access_key_id(), "FROMCREDS");
        assert_eq!(got.aws_secret_access_key(), "S1");

        for (config, expect) in [
            (
                "[profile app]\nrole_arn = r\nsource_profile = a\ncredential_source = Environment\n",
                "both source_profile and credential_source",
            ),
            (
                "[profile app]\nrole_arn = r\nsource_profile = b\n[profile b]\nrole_arn = r\nsource_profile = app\n",
                "source_profile loop",
            ),
            ("[profile app]\nrole_arn = r\nsource_profile = gone\n", "does not exist"),
            ("[profile app]\nrole_arn = r\n", "neither source_profile"),
            ("[profile app]\nrole_arn = r\ncredential_source = Moon\n", "Moon"),
            (
                "[profile app]\nrole_arn = r\ncredential_source = Environment\n",
                "no credentials",
            ),
            ("[profile app]\nweb_identity_token_file = /t\n", "no role_arn"),
            ("[profile app]\nrole_arn = r\nmfa_serial = m\nsource_profile = app\n", "mfa_serial"),
            ("[profile app]\nsso_start_url = https://x\n", "SSO"),
            ("[profile other]\na = b\n", "no such profile"),
        ] {
            let c = chain_with(dir.path(), config, "", "app");
            let e = outcome(&c).await.err().unwrap_or_else(|| panic!("{config}: no error"));
            assert!(e.contains(expect), "{config}: {e}");
            assert!(e.contains("profile"), "{e}");
        }
    }

    #[tokio::test]
    async fn credential_process_profile() {
        let dir = tempfile::tempdir().unwrap();
        let c = chain_with(
            dir.path(),
            "[profile app]\ncredential_process = echo '{\"Version\": 1, \"AccessKeyId\": \"AKPROC\", \"SecretAccessKey\": \"SKPROC\"}'\n",
            "",
            "app",
        );
        let got = outcome(&c).await.unwrap().unwrap();
        assert_eq!(got.aws_access_key_id(), "AKPROC");
    }
}
