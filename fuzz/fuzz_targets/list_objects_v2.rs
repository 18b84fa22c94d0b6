//! The driver's own ListObjectsV2 reader (`listxml`, what every listing, walk, delete and stat
//! fallback parses with), checked two ways for every input:
//!
//! * the raw input bytes as an answer body: the reader returns (a result or an error), it
//!   never panics, loops or allocates without bound (libFuzzer's timeout and RSS limit);
//! * a well-formed ListObjectsV2 document built from the input with `arbitrary::Unstructured`
//!   (keys, prefixes and tokens with entity, character-reference and CDATA escapes, non-ASCII,
//!   children and top-level elements in random order, optional fields missing, unknown
//!   elements with children, optional declaration, `xmlns` and whitespace): the reader must
//!   read exactly the values the document was built from, and rusoto_s3's own parser (the
//!   one it replaced) must read the same.
//!
//! The driver exposes `#[doc(hidden)]` entry points in `test_support` for this: `fuzz_parse_list` (the reader)
//! and `fuzz_rusoto_parse_list` (rusoto_s3 on a canned answer).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use regstore_driver_s3::test_support::{
    fuzz_parse_list, fuzz_rusoto_parse_list, ListXmlFuzzOutput,
};

/// Characters values are made of: path characters, XML's specials, spaces, non-ASCII.
const POOL: &str = "abzAZ09/-._=+&<>\"' ;#]\u{e9}\u{4e2d}\u{1f600}";

/// One character, escaped one of the ways XML allows.
fn escaped_char(u: &mut Unstructured, c: char, out: &mut String) -> Result<()> {
    let named = match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        _ => None,
    };
    match u.int_in_range(0..=3u8)? {
        1 => out.push_str(&format!("&#{};", c as u32)),
        2 => out.push_str(&format!("&#x{:X};", c as u32)),
        3 => out.push_str(&format!("&#x{:x};", c as u32)),
        _ => match (named, c) {
            // `&` and `<` must be escaped; the others may stay literal.
            (Some(n), '&' | '<') => out.push_str(n),
            // `]]>` must not occur in character data.
            (Some(n), '>') if out.ends_with("]]") => out.push_str(n),
            (Some(n), _) if u.arbitrary::<bool>()? => out.push_str(n),
            _ => out.push(c),
        },
    }
    Ok(())
}

/// A value and its XML text. Never whitespace-only unless empty (rusoto_s3 reads a
/// whitespace-only element as an error, a difference that no S3 server exercises).
fn value(u: &mut Unstructured) -> Result<(String, String)> {
    let len = u.int_in_range(0..=24usize)?;
    let pool: Vec<char> = POOL.chars().collect();
    let mut v = String::new();
    for _ in 0..len {
        v.push(*u.choose(&pool)?);
    }
    if !v.is_empty() && v.trim().is_empty() {
        v.push('x');
    }
    let mut xml = String::new();
    if !v.contains("]]>") && u.ratio(1, 6)? {
        xml.push_str("<![CDATA[");
        xml.push_str(&v);
        xml.push_str("]]>");
    } else {
        for c in v.chars() {
            escaped_char(u, c, &mut xml)?;
        }
    }
    Ok((v, xml))
}

fn element(name: &str, text: &str) -> String {
    format!("<{name}>{text}</{name}>")
}

/// Some whitespace between elements (or none).
fn space(u: &mut Unstructured) -> Result<&'static str> {
    u.choose(&["", "", "\n", "\n  ", " ", "\r\n\t"]).copied()
}

/// Shuffles `items` with choices from `u`.
fn shuffle(u: &mut Unstructured, items: &mut [String]) -> Result<()> {
    for i in (1..items.len()).rev() {
        let j = u.int_in_range(0..=i)?;
        items.swap(i, j);
    }
    Ok(())
}

/// A well-formed document and what it says.
fn document(u: &mut Unstructured) -> Result<(String, ListXmlFuzzOutput)> {
    let mut truth = ListXmlFuzzOutput::default();
    // Top-level items in document order; contents and prefixes keep their relative order.
    let mut items: Vec<String> = Vec::new();
    for _ in 0..u.int_in_range(0..=8usize)? {
        if u.ratio(1, 4)? {
            let (p, xml) = value(u)?;
            truth.common_prefixes.push(p);
            items.push(format!(
                "<CommonPrefixes>{}{}</CommonPrefixes>",
                space(u)?,
                element("Prefix", &xml)
            ));
            continue;
        }
        let mut children = Vec::new();
        let key = if u.ratio(9, 10)? {
            let (k, xml) = value(u)?;
            children.push(element("Key", &xml));
            Some(k)
        } else {
            None
        };
        let size = if u.ratio(9, 10)? {
            // rusoto_s3 reads sizes as i64.
            let s = u.arbitrary::<u64>()? >> 1;
            children.push(element("Size", &s.to_string()));
            Some(s)
        } else {
            None
        };
        let modified = if u.arbitrary::<bool>()? {
            let t = format!("2026-11-{:02}T18:26:43.181Z", u.int_in_range(1..=30u8)?);
            children.push(element("LastModified", &t));
            Some(t)
        } else {
            None
        };
        if u.arbitrary::<bool>()? {
            children.push(element(
                "ETag",
                "&quot;9dd4e461268c8034f5c8564e155c67a6&quot;",
            ));
        }
        if u.arbitrary::<bool>()? {
            children.push("<Owner><ID>o</ID><DisplayName>d</DisplayName></Owner>".to_owned());
        }
        if u.arbitrary::<bool>()? {
            children.push(element("StorageClass", "STANDARD"));
        }
        shuffle(u, &mut children)?;
        let sep = space(u)?;
        truth.entries.push((key, size, modified));
        items.push(format!(
            "<Contents>{sep}{}{sep}</Contents>",
            children.join(sep)
        ));
    }
    let mut scalars = vec![
        element("Name", "bucket"),
        element("KeyCount", &truth.entries.len().to_string()),
        element("MaxKeys", "1000"),
    ];
    if u.arbitrary::<bool>()? {
        let (_, xml) = value(u)?;
        scalars.push(element("Prefix", &xml));
    }
    if u.arbitrary::<bool>()? {
        let t = u.arbitrary::<bool>()?;
        truth.is_truncated = Some(t);
        scalars.push(element("IsTruncated", if t { "true" } else { "false" }));
    }
    if u.arbitrary::<bool>()? {
        let (t, xml) = value(u)?;
        truth.next_continuation_token = Some(t);
        scalars.push(element("NextContinuationToken", &xml));
    }
    for s in scalars {
        let at = u.int_in_range(0..=items.len())?;
        items.insert(at, s);
    }
    let mut doc = String::new();
    if u.arbitrary::<bool>()? {
        doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        doc.push_str(space(u)?);
    }
    doc.push_str("<ListBucketResult");
    if u.arbitrary::<bool>()? {
        doc.push_str(" xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"");
    }
    doc.push('>');
    let sep = space(u)?;
    doc.push_str(sep);
    doc.push_str(&items.join(sep));
    doc.push_str(sep);
    doc.push_str("</ListBucketResult>");
    doc.push_str(space(u)?);
    Ok((doc, truth))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = fuzz_parse_list(data);

    let mut u = Unstructured::new(data);
    let Ok((doc, truth)) = document(&mut u) else {
        return;
    };
    let ours = fuzz_parse_list(doc.as_bytes())
        .unwrap_or_else(|e| panic!("well-formed document rejected: {e}\n{doc}"));
    assert_eq!(ours, truth, "{doc}");
    let theirs = runtime().block_on(fuzz_rusoto_parse_list(doc.as_bytes()));
    assert_eq!(
        Some(&ours),
        theirs.as_ref(),
        "rusoto_s3 disagrees on\n{doc}"
    );
});
