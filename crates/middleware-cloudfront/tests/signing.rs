//! Signed URLs verify with the public key, for both hashes, PKCS#1 and PKCS#8 RSA keys and
//! ECDSA P-256 keys; the policy and query layout are exact; bad keys and URLs are refused.

mod common;

use common::*;
use regstore_middleware_cloudfront::sign::{canned_policy_json, KeyKind};
use regstore_middleware_cloudfront::{Cidr, HashAlgorithm, Policy, SignError, UrlSigner};
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    RSA_PKCS1_2048_8192_SHA256,
};

const URL: &str =
    "https://d111111abcdef8.cloudfront.net/docker/registry/v2/blobs/sha256/ab/abcdef/data";
const EXPIRES: u64 = 1767290400;

fn signer(key: &str, hash: Option<HashAlgorithm>) -> UrlSigner {
    UrlSigner::from_pem(&data(key), "K2JCJMDEHXQW5F", hash)
        .unwrap_or_else(|e| panic!("loading {key}: {e}"))
}

#[test]
fn rsa_sha1_canned_url_layout_and_signature() {
    for key in ["rsa2048-pkcs1.pem", "rsa2048-pkcs8.pem"] {
        let s = signer(key, None);
        assert_eq!(s.hash_algorithm(), HashAlgorithm::Sha1);
        assert_eq!(s.key_kind(), KeyKind::Rsa);
        let signed = s.sign_canned(URL, EXPIRES).unwrap();
        let sig = param(&signed, "Signature");
        assert_eq!(
            signed,
            format!("{URL}?Expires={EXPIRES}&Signature={sig}&Key-Pair-Id=K2JCJMDEHXQW5F"),
            "exact layout, no Hash-Algorithm for SHA-1"
        );
        assert!(!sig.contains(['+', '=', '/']), "URL-safe: {sig}");
        let policy = canned_policy_json(URL, EXPIRES);
        assert!(verify(
            &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            &data("rsa2048-public-pkcs1.der"),
            policy.as_bytes(),
            &sig
        ));
        // PKCS#1 v1.5 is deterministic: OpenSSL's signature of the same policy is identical.
        assert_eq!(
            sig,
            String::from_utf8(data("rsa2048-sha1.sig.txt"))
                .unwrap()
                .trim(),
            "{key}"
        );
        // And it does not verify for another message.
        assert!(!verify(
            &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            &data("rsa2048-public-pkcs1.der"),
            canned_policy_json(URL, EXPIRES + 1).as_bytes(),
            &sig
        ));
    }
}

#[test]
fn rsa_sha256_canned_url_layout_and_signature() {
    for key in ["rsa2048-pkcs1.pem", "rsa2048-pkcs8.pem"] {
        let s = signer(key, Some(HashAlgorithm::Sha256));
        let signed = s.sign_canned(URL, EXPIRES).unwrap();
        let sig = param(&signed, "Signature");
        assert_eq!(
            signed,
            format!(
                "{URL}?Expires={EXPIRES}&Signature={sig}&Key-Pair-Id=K2JCJMDEHXQW5F&Hash-Algorithm=SHA256"
            )
        );
        let policy = canned_policy_json(URL, EXPIRES);
        assert!(verify(
            &RSA_PKCS1_2048_8192_SHA256,
            &data("rsa2048-public-pkcs1.der"),
            policy.as_bytes(),
            &sig
        ));
        assert!(!verify(
            &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            &data("rsa2048-public-pkcs1.der"),
            policy.as_bytes(),
            &sig
        ));
        assert_eq!(
            sig,
            String::from_utf8(data("rsa2048-sha256.sig.txt"))
                .unwrap()
                .trim()
        );
    }
}

#[test]
fn ecdsa_p256_sec1_and_pkcs8() {
    for key in ["ec-p256-sec1.pem", "ec-p256-pkcs8.pem"] {
        let s = signer(key, None);
        assert_eq!(s.key_kind(), KeyKind::EcdsaP256);
        assert_eq!(s.hash_algorithm(), HashAlgorithm::Sha256);
        let signed = s.sign_canned(URL, EXPIRES).unwrap();
        let sig = param(&signed, "Signature");
        assert_eq!(
            signed,
            format!(
                "{URL}?Expires={EXPIRES}&Signature={sig}&Key-Pair-Id=K2JCJMDEHXQW5F&Hash-Algorithm=SHA256"
            )
        );
        assert!(
            verify(
                &ECDSA_P256_SHA256_ASN1,
                &ec_public_point(),
                canned_policy_json(URL, EXPIRES).as_bytes(),
                &sig
            ),
            "{key}"
        );
        // Explicit sha256 is fine too.
        signer(key, Some(HashAlgorithm::Sha256));
    }
    let e = UrlSigner::from_pem(&data("ec-p256-pkcs8.pem"), "K", Some(HashAlgorithm::Sha1))
        .unwrap_err();
    assert!(matches!(e, SignError::UnsupportedAlgorithm(_)), "{e}");
}

#[test]
fn query_is_appended_with_ampersand() {
    let s = signer("rsa2048-pkcs1.pem", None);
    let url = "https://d111111abcdef8.cloudfront.net/image.jpg?color=red&size=medium";
    let signed = s.sign_canned(url, 1357034400).unwrap();
    let sig = param(&signed, "Signature");
    assert_eq!(
        signed,
        format!("{url}&Expires=1357034400&Signature={sig}&Key-Pair-Id=K2JCJMDEHXQW5F")
    );
    assert!(verify(
        &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        &data("rsa2048-public-pkcs1.der"),
        canned_policy_json(url, 1357034400).as_bytes(),
        &sig
    ));
}

#[test]
fn custom_policy_with_wildcard_start_time_and_ip_range() {
    let policy = Policy::new("https://d111111abcdef8.cloudfront.net/docker/*", EXPIRES)
        .not_before(1767200000)
        .from_ip_range("192.0.2.0/24".parse::<Cidr>().unwrap());
    for (key, hash, alg, public) in [
        (
            "rsa2048-pkcs8.pem",
            None,
            &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
                as &'static dyn ring::signature::VerificationAlgorithm,
            data("rsa2048-public-pkcs1.der"),
        ),
        (
            "rsa2048-pkcs1.pem",
            Some(HashAlgorithm::Sha256),
            &RSA_PKCS1_2048_8192_SHA256,
            data("rsa2048-public-pkcs1.der"),
        ),
        (
            "ec-p256-sec1.pem",
            None,
            &ECDSA_P256_SHA256_ASN1,
            ec_public_point(),
        ),
    ] {
        let s = signer(key, hash);
        let signed = s.sign_with_policy(URL, &policy).unwrap();
        let pairs = query_pairs(&signed);
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let mut expected = vec!["Policy", "Signature", "Key-Pair-Id"];
        if s.hash_algorithm() == HashAlgorithm::Sha256 {
            expected.push("Hash-Algorithm");
        }
        assert_eq!(names, expected, "{signed}");
        assert!(signed.starts_with(&format!("{URL}?Policy=")));
        let json = String::from_utf8(cloudfront_unbase64(&param(&signed, "Policy"))).unwrap();
        assert_eq!(
            json,
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/docker/*","Condition":{"DateLessThan":{"AWS:EpochTime":1767290400},"DateGreaterThan":{"AWS:EpochTime":1767200000},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"}}}]}"#
        );
        assert!(
            verify(alg, &public, json.as_bytes(), &param(&signed, "Signature")),
            "{key}"
        );
    }
}

#[test]
fn small_rsa_keys_work_only_with_sha1() {
    // distribution's own test uses a 1024-bit PKCS#1 key with the SHA-1 default.
    let s = signer("rsa1024-pkcs1.pem", None);
    assert!(s.sign_canned(URL, EXPIRES).is_ok());
    let e = UrlSigner::from_pem(&data("rsa1024-pkcs1.pem"), "K", Some(HashAlgorithm::Sha256))
        .unwrap_err();
    assert!(e.to_string().contains("2048"), "{e}");
}

#[test]
fn bad_keys_are_refused_without_leaking_them() {
    let e = UrlSigner::from_pem(&data("ec-p384-sec1.pem"), "K", None).unwrap_err();
    assert!(e.to_string().contains("P-256"), "{e}");
    let e = UrlSigner::from_pem(b"not a key", "K", None).unwrap_err();
    assert!(matches!(e, SignError::InvalidKey(_)), "{e}");
    let mut broken = String::from_utf8(data("rsa2048-pkcs1.pem")).unwrap();
    broken = broken.replacen("MII", "MIJ", 1);
    let e = UrlSigner::from_pem(broken.as_bytes(), "K", None).unwrap_err();
    assert!(e.to_string().contains("failed to decode"), "{e}");
    let key_body = String::from_utf8(data("rsa2048-pkcs1.pem")).unwrap();
    let secret_line = key_body.lines().nth(2).unwrap();
    assert!(!e.to_string().contains(secret_line));
    let s = signer("rsa2048-pkcs1.pem", None);
    let dbg = format!("{s:?}");
    assert!(
        dbg.contains("K2JCJMDEHXQW5F") && !dbg.contains(secret_line),
        "{dbg}"
    );
}

#[test]
fn bad_urls_are_refused() {
    let s = signer("rsa2048-pkcs1.pem", None);
    for bad in [
        "https://d.example/ümlaut",
        "https://d.example/a?Expires=1",
        "https://d.example/a?x=1&Policy=abc",
        "https://d.example/a?Signature=abc",
        "https://d.example/a?Key-Pair-Id=K",
        "https://d.example/a?Hash-Algorithm=SHA256",
        "https://d.example/a\"b",
        "d.example/a",
        "https://d.example/a#f",
    ] {
        let e = s.sign_canned(bad, EXPIRES).unwrap_err();
        assert!(matches!(e, SignError::InvalidResource { .. }), "{bad}: {e}");
    }
    assert!(s
        .sign_with_policy(
            "https://d.example/a?Policy=x",
            &Policy::new("https://d.example/*", 1)
        )
        .is_err());
    assert!(s
        .sign_with_policy(
            "https://d.example/a",
            &Policy::new("https://d.example/é*", 1)
        )
        .is_err());
}
