//! CloudFront signed URLs: canned and custom policies, RSA and ECDSA keys.
//!
//! A signed URL carries a policy (for a canned policy only its expiry, since CloudFront rebuilds
//! the policy from the URL), a signature of the policy's JSON text, and the id of the key pair
//! or public key whose private half signed it. The signature is base64 with CloudFront's
//! URL-safe substitutions (`+`→`-`, `=`→`_`, `/`→`~`).
//!
//! # Algorithms and why two crypto crates
//!
//! * **RSA PKCS#1 v1.5 over SHA-1** — CloudFront's historical default and what distribution
//!   produces. `ring` deliberately cannot *sign* with SHA-1 (it only verifies legacy SHA-1
//!   signatures), so this one path uses RustCrypto's maintained `rsa` crate (0.10, whose
//!   constant-time `crypto-bigint` arithmetic replaces the 0.9 line affected by the Marvin
//!   timing advisory RUSTSEC-2023-0071) with `sha1`. Signing is blinded with OS randomness.
//! * **RSA PKCS#1 v1.5 over SHA-256** — selected with [`HashAlgorithm::Sha256`]; signed by
//!   `ring` (`RSA_PKCS1_SHA256`, keys of 2048 bits or more), and the URL gets
//!   `Hash-Algorithm=SHA256` after `Key-Pair-Id`, which is where CloudFront's documentation of
//!   canned-policy URLs places it
//!   (<https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-creating-signed-url-canned-policy.html>,
//!   and "When you use SHA-256, include the Hash-Algorithm=SHA256 query parameter" in
//!   <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/PrivateCFSignatureCodeAndExamples.html>).
//! * **ECDSA P-256 over SHA-256** — CloudFront accepts ECDSA 256 public keys in key groups;
//!   signed by `ring` (ASN.1 DER signature), always with `Hash-Algorithm=SHA256`.
//!
//! Keys are read from PEM: `RSA PRIVATE KEY` (PKCS#1), `PRIVATE KEY` (PKCS#8, RSA or P-256) and
//! `EC PRIVATE KEY` (SEC1, as `openssl ecparam -genkey` writes it). Encrypted keys are refused.

use std::fmt;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};

use crate::cidr::Cidr;

/// Query parameters CloudFront reserves for signing; a URL to be signed must not carry them.
const RESERVED_PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

/// The hash a signature is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1: CloudFront's default; RSA keys only. No `Hash-Algorithm` parameter is added.
    Sha1,
    /// SHA-256: adds `Hash-Algorithm=SHA256` to the URL.
    Sha256,
}

impl HashAlgorithm {
    /// Parses `sha1` / `sha256` (case-insensitive; `sha-1`, `sha-256` too).
    pub fn parse(s: &str) -> Option<HashAlgorithm> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha1" | "sha-1" => Some(HashAlgorithm::Sha1),
            "sha256" | "sha-256" => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }

    /// The value of the `Hash-Algorithm` query parameter, when one is sent.
    fn query_value(self) -> Option<&'static str> {
        match self {
            HashAlgorithm::Sha1 => None,
            HashAlgorithm::Sha256 => Some("SHA256"),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
        })
    }
}

/// The kind of a loaded private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An RSA key.
    Rsa,
    /// An ECDSA key on NIST P-256.
    EcdsaP256,
}

/// Why a key could not be loaded or a URL could not be signed. Messages never contain key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key text is not a usable PEM private key.
    #[error("{0}")]
    InvalidKey(String),
    /// The key does not work with the requested hash algorithm.
    #[error("{0}")]
    UnsupportedAlgorithm(String),
    /// The key pair id has characters CloudFront ids never have.
    #[error("invalid key pair id: only ASCII letters, digits, '-' and '_' are allowed")]
    InvalidKeyPairId,
    /// The URL or policy resource cannot be signed.
    #[error("cannot sign {url:?}: {reason}")]
    InvalidResource {
        /// The offending URL or resource.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The crypto library refused to sign.
    #[error("signing failed")]
    SigningFailed,
}

/// Base64 with CloudFront's URL-safe substitutions: `+`→`-`, `=`→`_`, `/`→`~`.
pub fn cloudfront_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(data)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// The JSON text of a canned policy for `resource` expiring at `expires` (Unix seconds):
/// `{"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":<secs>}}}]}`,
/// compact, exactly as CloudFront rebuilds it from a canned-policy URL.
pub fn canned_policy_json(resource: &str, expires: u64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

/// A custom policy: a resource that may hold `*` wildcards, an expiry, and optionally a start
/// time and a client address range.
///
/// Signed with [`UrlSigner::sign_with_policy`]; the URL then carries `Policy=` (the JSON in
/// CloudFront base64) instead of `Expires=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    resource: String,
    date_less_than: u64,
    date_greater_than: Option<u64>,
    source_ip: Option<Cidr>,
}

impl Policy {
    /// A policy for `resource` (a URL, possibly with `*` wildcards, e.g.
    /// `https://d111111abcdef8.cloudfront.net/docker/*`) valid until `date_less_than` (Unix
    /// seconds).
    pub fn new(resource: impl Into<String>, date_less_than: u64) -> Policy {
        Policy {
            resource: resource.into(),
            date_less_than,
            date_greater_than: None,
            source_ip: None,
        }
    }

    /// Valid only from `epoch` (Unix seconds) on.
    pub fn not_before(mut self, epoch: u64) -> Policy {
        self.date_greater_than = Some(epoch);
        self
    }

    /// Valid only for clients inside `range`.
    pub fn from_ip_range(mut self, range: Cidr) -> Policy {
        self.source_ip = Some(range);
        self
    }

    /// The resource pattern.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The policy's compact JSON text. Fails for a resource with non-ASCII or control
    /// characters.
    pub fn to_json(&self) -> Result<String, SignError> {
        check_ascii(&self.resource)?;
        let resource =
            serde_json::to_string(&self.resource).map_err(|_| SignError::InvalidResource {
                url: self.resource.clone(),
                reason: "cannot be written as JSON".into(),
            })?;
        let mut condition = format!(
            r#""DateLessThan":{{"AWS:EpochTime":{}}}"#,
            self.date_less_than
        );
        if let Some(start) = self.date_greater_than {
            condition.push_str(&format!(
                r#","DateGreaterThan":{{"AWS:EpochTime":{start}}}"#
            ));
        }
        if let Some(ip) = self.source_ip {
            condition.push_str(&format!(r#","IpAddress":{{"AWS:SourceIp":"{ip}"}}"#));
        }
        Ok(format!(
            r#"{{"Statement":[{{"Resource":{resource},"Condition":{{{condition}}}}}]}}"#
        ))
    }
}

enum Key {
    /// Boxed: the `rsa` key with its precomputed values is large.
    RsaSha1(Box<rsa::pkcs1v15::SigningKey<sha1::Sha1>>),
    RsaSha256(RsaKeyPair),
    EcdsaP256(EcdsaKeyPair),
}

/// Signs CloudFront URLs with one private key and key pair id.
///
/// `Debug` shows the key pair id, key kind and hash, never the key.
pub struct UrlSigner {
    key: Key,
    key_pair_id: String,
    hash: HashAlgorithm,
    rng: SystemRandom,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("key_pair_id", &self.key_pair_id)
            .field("key_kind", &self.key_kind())
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl UrlSigner {
    /// Loads the first private key of `pem` for signing with `hash`.
    ///
    /// With `hash == None` RSA keys sign with SHA-1 (CloudFront's default) and ECDSA keys with
    /// SHA-256 (the only hash offered for them). ECDSA with SHA-1 is refused, and so is
    /// SHA-256 with an RSA key shorter than 2048 bits (CloudFront requires 2048-bit keys; the
    /// SHA-1 path still accepts the 1024-bit keys older setups and distribution's tests use).
    pub fn from_pem(
        pem: &[u8],
        key_pair_id: impl Into<String>,
        hash: Option<HashAlgorithm>,
    ) -> Result<UrlSigner, SignError> {
        let key_pair_id = key_pair_id.into();
        if key_pair_id.is_empty()
            || !key_pair_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SignError::InvalidKeyPairId);
        }
        let rng = SystemRandom::new();
        let (label, der) = first_private_key_block(pem)?;
        let (key, hash) = match label.as_str() {
            "RSA PRIVATE KEY" => load_rsa(&der, false, hash)?,
            "EC PRIVATE KEY" => {
                let pkcs8 = sec1_p256_to_pkcs8(&der)?;
                load_ecdsa(&pkcs8, hash, &rng)?
            }
            "PRIVATE KEY" => {
                if is_pkcs8_ec(&der) {
                    load_ecdsa(&der, hash, &rng)?
                } else {
                    load_rsa(&der, true, hash)?
                }
            }
            other => {
                return Err(SignError::InvalidKey(format!(
                    "unsupported PEM block {other:?}: expected RSA PRIVATE KEY, PRIVATE KEY or EC PRIVATE KEY"
                )))
            }
        };
        Ok(UrlSigner {
            key,
            key_pair_id,
            hash,
            rng,
        })
    }

    /// The key pair (or public key) id sent as `Key-Pair-Id`.
    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    /// The hash the signatures use.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash
    }

    /// Whether the key is RSA or ECDSA.
    pub fn key_kind(&self) -> KeyKind {
        match self.key {
            Key::RsaSha1(_) | Key::RsaSha256(_) => KeyKind::Rsa,
            Key::EcdsaP256(_) => KeyKind::EcdsaP256,
        }
    }

    /// The raw signature of `message` (before base64).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.key {
            // `try_sign` blinds the private-key operation with OS randomness.
            Key::RsaSha1(key) => key
                .try_sign(message)
                .map(|s| s.to_vec())
                .map_err(|_| SignError::SigningFailed),
            Key::RsaSha256(key) => {
                let mut sig = vec![0u8; key.public().modulus_len()];
                key.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    message,
                    &mut sig,
                )
                .map_err(|_| SignError::SigningFailed)?;
                Ok(sig)
            }
            Key::EcdsaP256(key) => key
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError::SigningFailed),
        }
    }

    /// Signs `url` with a canned policy expiring at `expires` (Unix seconds) and returns the
    /// signed URL: `url` + (`&` if it has a query, else `?`) +
    /// `Expires=<expires>&Signature=<sig>&Key-Pair-Id=<id>` (+ `&Hash-Algorithm=SHA256`).
    ///
    /// The URL must be absolute http(s), pure ASCII, without fragment, without `"` or `\`, and
    /// without the query parameters CloudFront reserves (`Expires`, `Policy`, `Signature`,
    /// `Key-Pair-Id`, `Hash-Algorithm`).
    pub fn sign_canned(&self, url: &str, expires: u64) -> Result<String, SignError> {
        check_url(url)?;
        if url.contains(['"', '\\']) {
            return Err(invalid(url, "contains '\"' or '\\'"));
        }
        let signature =
            cloudfront_base64(&self.sign_bytes(canned_policy_json(url, expires).as_bytes())?);
        Ok(self.finish(url, &format!("Expires={expires}"), &signature))
    }

    /// Signs `url` with a custom `policy` and returns the signed URL: `url` + `?`/`&` +
    /// `Policy=<base64 policy>&Signature=<sig>&Key-Pair-Id=<id>` (+ `&Hash-Algorithm=SHA256`).
    ///
    /// `url` is what the client requests; the policy's resource may be a wildcard pattern
    /// covering it. `url` must satisfy the rules of [`sign_canned`](Self::sign_canned) except
    /// the one about `"` and `\` (a custom policy is escaped JSON).
    pub fn sign_with_policy(&self, url: &str, policy: &Policy) -> Result<String, SignError> {
        check_url(url)?;
        let json = policy.to_json()?;
        let signature = cloudfront_base64(&self.sign_bytes(json.as_bytes())?);
        let encoded_policy = cloudfront_base64(json.as_bytes());
        Ok(self.finish(url, &format!("Policy={encoded_policy}"), &signature))
    }

    fn finish(&self, url: &str, policy_param: &str, signature: &str) -> String {
        let sep = if url.ends_with(['?', '&']) {
            ""
        } else if url.contains('?') {
            "&"
        } else {
            "?"
        };
        let mut out = format!(
            "{url}{sep}{policy_param}&Signature={signature}&Key-Pair-Id={}",
            self.key_pair_id
        );
        if let Some(h) = self.hash.query_value() {
            out.push_str("&Hash-Algorithm=");
            out.push_str(h);
        }
        out
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> SignError {
    SignError::InvalidResource {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

fn check_ascii(s: &str) -> Result<(), SignError> {
    if !s.is_ascii() {
        return Err(invalid(
            s,
            "must be ASCII (percent-encode other characters)",
        ));
    }
    if s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(invalid(s, "contains spaces or control characters"));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), SignError> {
    check_ascii(url)?;
    let parsed = url::Url::parse(url).map_err(|e| invalid(url, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(url, "must be an absolute http or https URL"));
    }
    if url.contains('#') {
        return Err(invalid(url, "must not have a fragment"));
    }
    if let Some(query) = url.split_once('?').map(|(_, q)| q) {
        for pair in query.split('&') {
            let name = pair.split('=').next().unwrap_or("");
            if let Some(reserved) = RESERVED_PARAMS
                .iter()
                .find(|r| r.eq_ignore_ascii_case(name))
            {
                return Err(invalid(
                    url,
                    format!("already has the signing query parameter {reserved}"),
                ));
            }
        }
    }
    Ok(())
}

fn load_rsa(
    der: &[u8],
    pkcs8: bool,
    hash: Option<HashAlgorithm>,
) -> Result<(Key, HashAlgorithm), SignError> {
    let bad = |what: &str| {
        SignError::InvalidKey(format!(
            "failed to decode private key as an RSA {what} private key"
        ))
    };
    match hash.unwrap_or(HashAlgorithm::Sha1) {
        HashAlgorithm::Sha1 => {
            let key = if pkcs8 {
                rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| bad("PKCS#8"))?
            } else {
                rsa::PrivateKey::from_pkcs1_der(der).map_err(|_| bad("PKCS#1"))?
            };
            Ok((
                Key::RsaSha1(Box::new(rsa::pkcs1v15::SigningKey::new(key))),
                HashAlgorithm::Sha1,
            ))
        }
        HashAlgorithm::Sha256 => {
            let key = if pkcs8 {
                RsaKeyPair::from_pkcs8(der)
            } else {
                RsaKeyPair::from_der(der)
            }
            .map_err(|e| {
                SignError::InvalidKey(format!(
                    "RSA key rejected for sha256 signing ({e}); CloudFront requires 2048-bit RSA keys"
                ))
            })?;
            Ok((Key::RsaSha256(key), HashAlgorithm::Sha256))
        }
    }
}

fn load_ecdsa(
    pkcs8: &[u8],
    hash: Option<HashAlgorithm>,
    rng: &SystemRandom,
) -> Result<(Key, HashAlgorithm), SignError> {
    if hash == Some(HashAlgorithm::Sha1) {
        return Err(SignError::UnsupportedAlgorithm(
            "ECDSA keys sign with sha256 only; set the hash algorithm to sha256".into(),
        ));
    }
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, rng).map_err(|e| {
        SignError::InvalidKey(format!(
            "failed to decode private key as an ECDSA P-256 key ({e}); only P-256 is accepted by CloudFront"
        ))
    })?;
    Ok((Key::EcdsaP256(key), HashAlgorithm::Sha256))
}

// --- PEM and the little DER needed around it -------------------------------------------------

/// The label and decoded body of the first PEM block that is a private key (skipping blocks
/// such as `EC PARAMETERS` that OpenSSL writes before EC keys).
fn first_private_key_block(pem: &[u8]) -> Result<(String, Vec<u8>), SignError> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| SignError::InvalidKey("private key file is not PEM text".into()))?;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].trim().to_owned();
        let body_and_more = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_and_more.find(&end_marker) else {
            return Err(SignError::InvalidKey(format!(
                "PEM block {label:?} has no END line"
            )));
        };
        let body = &body_and_more[..body_end];
        rest = &body_and_more[body_end + end_marker.len()..];
        if label.contains("PARAMETERS") {
            continue;
        }
        if label.contains("ENCRYPTED") || body.contains("Proc-Type:") || body.contains("DEK-Info:")
        {
            return Err(SignError::InvalidKey(
                "encrypted private keys are not supported; store the key unencrypted with tight file permissions".into(),
            ));
        }
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| {
                SignError::InvalidKey(format!("PEM block {label:?} is not valid base64"))
            })?;
        return Ok((label, der));
    }
    Err(SignError::InvalidKey(
        "failed to decode private key: no PEM private key block found".into(),
    ))
}

/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Whether a PKCS#8 document's algorithm is id-ecPublicKey. A search for the OID's bytes is
/// enough here: the OID sits in the algorithm identifier near the start, and an RSA key of
/// PKCS#8 starts with rsaEncryption instead.
fn is_pkcs8_ec(der: &[u8]) -> bool {
    (0..der.len().min(32)).any(|i| der[i..].starts_with(OID_EC_PUBLIC_KEY))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Wraps a SEC1 `ECPrivateKey` in a PKCS#8 envelope for P-256, which is what `ring` reads.
/// `ring` then checks the inner key (version, curve parameters if present, public key).
fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, SignError> {
    if sec1.first() != Some(&0x30) {
        return Err(SignError::InvalidKey(
            "EC PRIVATE KEY block is not a DER sequence".into(),
        ));
    }
    let mut algorithm = OID_EC_PUBLIC_KEY.to_vec();
    algorithm.extend_from_slice(OID_P256);
    let mut body = vec![0x02, 0x01, 0x00]; // version 0
    body.extend(der_tlv(0x30, &algorithm));
    body.extend(der_tlv(0x04, sec1));
    Ok(der_tlv(0x30, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_substitutions() {
        // 0xfb 0xff → "+/8=" in standard base64.
        assert_eq!(cloudfront_base64(&[0xfb, 0xff]), "-~8_");
        assert_eq!(cloudfront_base64(b""), "");
    }

    #[test]
    fn canned_policy_is_exact() {
        assert_eq!(
            canned_policy_json("https://d.example/a/b", 1357034400),
            r#"{"Statement":[{"Resource":"https://d.example/a/b","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}"#
        );
    }

    #[test]
    fn custom_policy_json() {
        let p = Policy::new("https://d.example/docker/*", 200)
            .not_before(100)
            .from_ip_range("192.0.2.0/24".parse().unwrap());
        assert_eq!(
            p.to_json().unwrap(),
            r#"{"Statement":[{"Resource":"https://d.example/docker/*","Condition":{"DateLessThan":{"AWS:EpochTime":200},"DateGreaterThan":{"AWS:EpochTime":100},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"}}}]}"#
        );
        assert_eq!(
            Policy::new("https://d.example/x", 5).to_json().unwrap(),
            canned_policy_json("https://d.example/x", 5)
        );
        assert!(Policy::new("https://d.example/ü", 5).to_json().is_err());
    }

    #[test]
    fn url_checks() {
        assert!(check_url("https://d.example/a?x=1").is_ok());
        for bad in [
            "https://d.example/ü",
            "d.example/a",
            "ftp://d.example/a",
            "https://d.example/a b",
            "https://d.example/a#frag",
            "https://d.example/a?Expires=1",
            "https://d.example/a?x=1&Signature=abc",
            "https://d.example/a?key-pair-id=K",
            "https://d.example/a?Policy",
            "https://d.example/a?Hash-Algorithm=SHA256",
        ] {
            assert!(check_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn pem_blocks() {
        assert!(matches!(
            first_private_key_block(b"nothing here"),
            Err(SignError::InvalidKey(_))
        ));
        let e = first_private_key_block(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
        let (label, der) = first_private_key_block(
            b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        assert_eq!(label, "EC PRIVATE KEY");
        assert_eq!(der, vec![0x30, 0x00]);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der_tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der_tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn key_pair_id_is_checked() {
        let e = UrlSigner::from_pem(b"", "bad id&x=1", None).unwrap_err();
        assert_eq!(e, SignError::InvalidKeyPairId);
    }
}
