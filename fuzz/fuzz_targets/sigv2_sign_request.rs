//! SigV2 request signing (`sigv2::sign_request`, the path every `v4auth: false` request takes):
//! header canonicalisation and canonical resource, checked for properties, not only for
//! panics.
//!
//! The target calls the driver's `#[doc(hidden)]` entry point `test_support::fuzz_sign_request`, which puts
//! the headers into a rusoto request's header map under their names *as given* (the map is
//! public, so nothing guarantees lower-case names), signs it with the dispatcher's code and
//! returns the string to sign and the signed headers. Checked for every input:
//!
//! * the secret key appears in no output (string to sign, any header);
//! * `Authorization` is exactly one `AWS <key>:<28 base64 chars>`, `Date` is one value, the
//!   session token header is present exactly when the credentials have one;
//! * every header name left in the request is lower-case (what is sent is what is signed);
//! * the string to sign is `method\nmd5\ntype\ndate\n` + one `x-amz-*` line per distinct
//!   lower-cased name, sorted, each value trimmed and unfolded (no CR/LF, so a value cannot add
//!   a line) and equal to the request's values joined with `,` + the canonical resource;
//! * the canonical resource is the path plus only the allow-listed sub-resources of AWS's
//!   list (this file's own copy), sorted by name;
//! * the string to sign does not depend on the order of distinct header names nor on the case
//!   of names (the same headers lower-cased, upper-cased and regrouped sign the same), and
//!   signing the signed request again (a retry) signs the same string.
//!
//! Input: structured with `arbitrary::Unstructured` (method from a fixed list; header and
//! parameter names mostly from pools of interesting names with random case; values arbitrary
//! bytes).

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use regstore_driver_s3::test_support::{fuzz_sign_request, SigV2FuzzInput, SigV2FuzzOutput};

const SECRET: &str = "fuzzSigV2SECRETheaderPATHmustNEVERleak/0123";
const AKID: &str = "AKIDFUZZSIGV2";

/// The sub-resources AWS signs (Amazon S3 API Reference, "Constructing the
/// CanonicalizedResource element"), kept here independently of the driver's list.
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "delete",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Parameters that look like sub-resources but are not (case, spacing, listing parameters).
const OTHER_PARAMS: &[&str] = &[
    "prefix",
    "list-type",
    "max-keys",
    "continuation-token",
    "UploadId",
    "uploadid",
    "ACL",
    "acl ",
    "x-amz-acl",
    "partnumber",
    "",
];

const HEADER_NAMES: &[&str] = &[
    "x-amz-meta-a",
    "x-amz-meta-b",
    "x-amz-acl",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-copy-source",
    "x-amz-content-sha256",
    "x-amz-",
    "x-amzfoo",
    "content-md5",
    "content-type",
    "content-length",
    "date",
    "authorization",
    "host",
    "expires",
];

const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE"];

struct Case {
    method: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    params: Vec<(String, Option<String>)>,
    path: String,
    token: Option<String>,
    now: i64,
}

/// `name` with each ASCII letter's case flipped where `mask` (cycled) has a 1 bit.
fn recase(name: &str, mask: u32) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 32) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// A header name: a pooled one (random case) or a token of `[A-Za-z0-9_-]` — header names
/// the dispatcher can send (no `:`, whitespace or control bytes).
fn header_name(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3, 4)? {
        let base = *u.choose(HEADER_NAMES)?;
        let mut name = base.to_owned();
        if u.ratio(1, 4)? {
            name.push_str(&token(u, 6)?);
        }
        Ok(recase(&name, u.arbitrary()?))
    } else {
        let t = token(u, 12)?;
        Ok(if t.is_empty() { "x".to_owned() } else { t })
    }
}

fn token(u: &mut Unstructured<'_>, max: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"abcxyzAXZ019-_";
    let n = u.int_in_range(0..=max)?;
    (0..n)
        .map(|_| u.choose(ALPHABET).map(|&b| char::from(b)))
        .collect()
}

fn value(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    const INTERESTING: &[&[u8]] = &[
        b" ",
        b"\t",
        b"\r\n ",
        b"\n",
        b"\r",
        b",",
        b":",
        b"a",
        b"b",
        b"\xFF",
        b"\xC2\xA0",
    ];
    let mut v = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        if u.ratio(1, 2)? {
            v.extend_from_slice(u.choose(INTERESTING)?);
        } else {
            let n = u.int_in_range(0..=6)?;
            v.extend_from_slice(u.bytes(n)?);
        }
    }
    Ok(v)
}

fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let method = *u.choose(METHODS)?;
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=12)? {
        headers.push((header_name(u)?, value(u)?));
    }
    let mut params = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        let name = if u.ratio(2, 3)? {
            (*u.choose(SUB_RESOURCES)?).to_owned()
        } else if u.ratio(3, 4)? {
            (*u.choose(OTHER_PARAMS)?).to_owned()
        } else {
            u.arbitrary()?
        };
        let v: Option<String> = u.arbitrary()?;
        params.push((name, v));
    }
    let path: String = u.arbitrary()?;
    let token: Option<String> = u.arbitrary()?;
    let now: i64 = u.arbitrary()?;
    Ok(Case {
        method,
        headers,
        params,
        path,
        token,
        now,
    })
}

fn sign(c: &Case, headers: &[(String, Vec<u8>)]) -> SigV2FuzzOutput {
    fuzz_sign_request(&SigV2FuzzInput {
        method: c.method,
        headers,
        params: &c.params,
        resource_path: &c.path,
        access_key: AKID,
        secret_key: SECRET,
        token: c.token.as_deref(),
        now: c.now,
    })
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The oracle for one canonical value: trimmed of SP/HT/CR/LF, every whitespace run holding
/// CR or LF replaced by one space, everything else byte for byte.
fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    for &b in v {
        if is_ws(b) {
            run.push(b);
            continue;
        }
        if !run.is_empty() && !out.is_empty() {
            if run.iter().any(|&c| c == b'\r' || c == b'\n') {
                out.push(b' ');
            } else {
                out.extend_from_slice(&run);
            }
        }
        run.clear();
        out.push(b);
    }
    out
}

fn joined(values: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&unfold(v));
    }
    out
}

/// The oracle for the canonical resource.
fn expected_resource(c: &Case) -> Vec<u8> {
    let mut last: std::collections::BTreeMap<&str, &Option<String>> = Default::default();
    for (k, v) in &c.params {
        last.insert(k, v);
    }
    let subs: Vec<String> = last
        .into_iter()
        .filter(|(k, _)| SUB_RESOURCES.contains(k))
        .map(|(k, v)| match v.as_deref() {
            None | Some("") => k.to_owned(),
            Some(v) => format!("{k}={v}"),
        })
        .collect();
    let mut out = c.path.clone().into_bytes();
    if !subs.is_empty() {
        out.push(b'?');
        out.extend_from_slice(subs.join("&").as_bytes());
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn check_output(c: &Case, out: &SigV2FuzzOutput) {
    let sts = &out.string_to_sign;
    let shown = String::from_utf8_lossy(sts);
    let get = |name: &str| {
        out.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };

    // Secrets: nowhere in what is signed or sent.
    assert!(
        !contains(sts, SECRET.as_bytes()),
        "secret in string to sign"
    );
    for (n, vs) in &out.headers {
        assert!(
            !contains(n.as_bytes(), SECRET.as_bytes())
                && vs.iter().all(|v| !contains(v, SECRET.as_bytes())),
            "secret in header {n}"
        );
        assert!(
            !n.bytes().any(|b| b.is_ascii_uppercase()),
            "header name {n:?} left with upper case: sent differs from signed"
        );
    }

    // Authorization, Date and the token header.
    let auth = get("authorization").expect("an Authorization header");
    assert_eq!(auth.len(), 1, "Authorization must be one value");
    let auth = std::str::from_utf8(&auth[0]).expect("Authorization is ASCII");
    let sig = auth
        .strip_prefix(&format!("AWS {AKID}:"))
        .unwrap_or_else(|| panic!("Authorization {auth:?} is not `AWS {AKID}:<sig>`"));
    assert!(
        sig.len() == 28
            && sig.ends_with('=')
            && sig
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
        "signature {sig:?} is not base64 of a SHA-1 HMAC"
    );
    let date = get("date").expect("a Date header");
    assert_eq!(date.len(), 1, "Date must be one value");
    assert!(date[0].ends_with(b" GMT"), "Date {:?}", date[0]);
    match (&c.token, get("x-amz-security-token")) {
        (Some(t), Some(v)) => assert_eq!(v, [t.as_bytes().to_vec()], "token header"),
        (None, None) => {}
        (t, v) => panic!("token {t:?} but token header {v:?}"),
    }

    // Structure of the string to sign.
    let resource = expected_resource(c);
    assert!(
        sts.ends_with(&resource),
        "string to sign {shown:?} does not end with the canonical resource {:?}",
        String::from_utf8_lossy(&resource)
    );
    let head = &sts[..sts.len() - resource.len()];
    assert!(head.ends_with(b"\n"), "{shown:?}");
    let lines: Vec<&[u8]> = head[..head.len() - 1].split(|&b| b == b'\n').collect();
    assert!(
        lines.len() >= 4,
        "string to sign {shown:?} has too few lines"
    );
    assert_eq!(lines[0], c.method.as_bytes());
    let canonical = |name: &str| get(name).map(joined).unwrap_or_default();
    assert_eq!(lines[1], canonical("content-md5"), "Content-MD5 line");
    assert_eq!(lines[2], canonical("content-type"), "Content-Type line");
    if get("x-amz-date").is_some() {
        assert!(lines[3].is_empty(), "Date line with x-amz-date: {shown:?}");
    } else {
        assert_eq!(lines[3], date[0], "Date line");
    }
    let amz: Vec<(&String, &Vec<Vec<u8>>)> = out
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-amz-"))
        .map(|(n, v)| (n, v))
        .collect();
    assert_eq!(
        lines.len() - 4,
        amz.len(),
        "one line per x-amz-* header expected in {shown:?}"
    );
    let mut previous: Option<&[u8]> = None;
    for (line, (name, values)) in lines[4..].iter().zip(&amz) {
        let colon = line.iter().position(|&b| b == b':').expect("name:value");
        let (n, v) = (&line[..colon], &line[colon + 1..]);
        assert_eq!(
            n,
            name.as_bytes(),
            "header lines sorted by lower-cased name"
        );
        if let Some(p) = previous {
            assert!(p < n, "header names not strictly sorted in {shown:?}");
        }
        previous = Some(n);
        assert!(!v.contains(&b'\r'), "CR in a canonical value: {shown:?}");
        assert!(
            !v.first().is_some_and(|&b| is_ws(b)) && !v.last().is_some_and(|&b| is_ws(b)),
            "untrimmed canonical value in {shown:?}"
        );
        assert_eq!(v, joined(values), "canonical value of {name}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(c) = case(&mut u) else {
        return;
    };
    // The fuzzer can learn the secret from the comparisons below; an input that carries it
    // would make the leak checks meaningless.
    let carries_secret = |s: &[u8]| contains(s, SECRET.as_bytes());
    if carries_secret(c.path.as_bytes())
        || c.token
            .as_deref()
            .is_some_and(|t| carries_secret(t.as_bytes()))
        || c.headers
            .iter()
            .any(|(n, v)| carries_secret(n.as_bytes()) || carries_secret(v))
        || c.params.iter().any(|(k, v)| {
            carries_secret(k.as_bytes())
                || v.as_deref().is_some_and(|v| carries_secret(v.as_bytes()))
        })
    {
        return;
    }

    let a = sign(&c, &c.headers);
    check_output(&c, &a);

    // Case and order: the request's map groups raw names in sorted order (values of one raw
    // name in insertion order); the same headers with lower-cased names, in that order within
    // each name but with the distinct names in reverse order, must sign the same, and so must
    // the upper-cased names.
    let mut grouped: Vec<(String, Vec<u8>)> = c.headers.clone();
    grouped.sort_by(|x, y| x.0.cmp(&y.0));
    let mut lower: Vec<(String, Vec<u8>)> = grouped
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    lower.sort_by(|x, y| y.0.cmp(&x.0));
    let b = sign(&c, &lower);
    assert_eq!(
        a.string_to_sign, b.string_to_sign,
        "header name case or order changed the string to sign"
    );
    assert_eq!(a.headers, b.headers);
    let upper: Vec<(String, Vec<u8>)> = lower
        .iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), v.clone()))
        .collect();
    let u_out = sign(&c, &upper);
    assert_eq!(
        a.string_to_sign, u_out.string_to_sign,
        "upper-case names changed the string to sign"
    );

    // A retry signs the already signed request again: same string, same headers.
    let resigned: Vec<(String, Vec<u8>)> = a
        .headers
        .iter()
        .flat_map(|(n, vs)| vs.iter().map(move |v| (n.clone(), v.clone())))
        .collect();
    let again = sign(&c, &resigned);
    assert_eq!(
        a.string_to_sign, again.string_to_sign,
        "re-signing changed it"
    );
    assert_eq!(a.headers, again.headers, "re-signing changed the headers");
});
