//! The environment the credential chain reads, and the environment-variable source.
//!
//! The chain works on a snapshot taken when the driver is built (as the AWS SDKs read their
//! environment when a client is built), so a test can hand it a map and nothing races on the
//! process environment.

use std::collections::HashMap;
use std::fmt;

use rusoto_credential::AwsCredentials;

use super::chain::{Found, SourceError};

/// A snapshot of the `AWS_*` variables, `HOME`, and the proxy and CA variables the credential
/// endpoints' client follows ([`NETWORK_VARS`]). `Debug` lists names only: values may be
/// secrets.
#[derive(Clone, Default)]
pub(crate) struct Vars(HashMap<String, String>);

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("Vars").field(&names).finish()
    }
}

/// The non-`AWS_` variables of the network set-up (see `crate::net`).
pub(crate) const NETWORK_VARS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
    "SSL_CERT_FILE",
];

impl Vars {
    /// The `AWS_*` variables, `HOME` and [`NETWORK_VARS`] of this process (variables that are not UTF-8 are
    /// left out: no SDK could use them either).
    pub(crate) fn from_process() -> Self {
        Vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| {
                    k.starts_with("AWS_") || k == "HOME" || NETWORK_VARS.contains(&k.as_str())
                })
                .collect(),
        )
    }

    /// A snapshot holding exactly `pairs` (tests).
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// The value of `name`, trimmed; `None` when unset or blank (the SDKs treat blank as unset).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// Whether `name` is `true` (any case), as the SDKs read their boolean switches.
    pub(crate) fn is_true(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Static keys from `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`).
/// Both are needed; a lone one is reported as the reason the source was skipped.
pub(crate) fn from_env(vars: &Vars) -> Result<Found, SourceError> {
    match (
        vars.get("AWS_ACCESS_KEY_ID"),
        vars.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => Ok(Found::Creds(AwsCredentials::new(
            id,
            secret,
            vars.get("AWS_SESSION_TOKEN").map(str::to_owned),
            None,
        ))),
        (Some(_), None) => Ok(Found::Absent(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
        )),
        (None, Some(_)) => Ok(Found::Absent(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
        )),
        (None, None) => Ok(Found::Absent(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_keys_need_both_halves_and_blank_is_unset() {
        let v = Vars::from_pairs(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "S3CRET"),
            ("AWS_SESSION_TOKEN", "TOK"),
        ]);
        let Found::Creds(c) = from_env(&v).unwrap() else {
            panic!("keys expected")
        };
        assert_eq!(c.aws_access_key_id(), "AKID");
        assert_eq!(c.aws_secret_access_key(), "S3CRET");
        assert_eq!(c.token().as_deref(), Some("TOK"));
        let v = Vars::from_pairs(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", " "),
        ]);
        let Found::Absent(why) = from_env(&v).unwrap() else {
            panic!("blank secret must not count")
        };
        assert!(why.contains("AWS_SECRET_ACCESS_KEY"), "{why}");
        assert!(!format!("{v:?}").contains("AKID"));
    }
}
