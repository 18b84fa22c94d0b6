//! Our own reader for ListObjectsV2 answers.
//!
//! rusoto_s3 parses a listing through a generic XML event stream and a deserializer per
//! field, which costs about 12.5 ms for a 1000-key page (`examples/list_parse_cost.rs`): most
//! of the time a walk of 10,000 objects spends on the client. This reader scans the answer
//! once and keeps only what the driver uses: each object's `Key`, `Size` and
//! `LastModified`, the `Prefix` of each `CommonPrefixes`, `IsTruncated` and
//! `NextContinuationToken`. Everything else is skipped.
//!
//! It is a real reader of XML text as S3 servers write it, not a substring search: the five
//! predefined entities and decimal/hexadecimal character references are decoded, CDATA
//! sections are taken literally, line ends are normalised as XML requires, namespace prefixes
//! and attributes (the root's `xmlns`) are ignored, elements may come in any order, unknown
//! elements are skipped with all they contain, and comments and processing instructions are
//! passed over. A document that is not well-formed in a way that matters (unclosed or
//! mismatched elements, unknown entities, a DTD, bytes after the root, text where a number is
//! due) is a [`ListXmlError`], never a panic; nesting depth and entry count are capped, and
//! every step of the scan consumes input, so no input can make it loop.

use std::borrow::Cow;
use std::fmt;

/// Deepest element nesting accepted. A listing is three levels deep; the slack allows unknown
/// elements with children (`Owner`, `ChecksumAlgorithm`, …) without letting a hostile document
/// make skipping expensive.
const MAX_DEPTH: usize = 32;

/// Most `Contents` plus `CommonPrefixes` entries accepted in one page. S3 sends at most
/// `max-keys` (≤ 1000); the cap only bounds what a broken server can make us hold.
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// Largest answer body accepted, in bytes. A 1000-key page of 1024-byte keys, every
/// character escaped, stays well below it.
pub(crate) const MAX_BODY: usize = 64 << 20;

/// An answer that is not a readable ListObjectsV2 document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListXmlError {
    /// Byte offset in the document where reading stopped.
    pub(crate) offset: usize,
    /// What was wrong (never contains more than a short excerpt of the document).
    pub(crate) message: String,
}

impl fmt::Display for ListXmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unreadable ListObjectsV2 answer at byte {}: {}",
            self.offset, self.message
        )
    }
}

impl std::error::Error for ListXmlError {}

/// One `Contents` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListEntry {
    /// `Key`; `None` when the entry has none (the caller decides whether that is an error).
    pub(crate) key: Option<String>,
    /// `Size`; `None` when absent.
    pub(crate) size: Option<u64>,
    /// `LastModified` as sent (trimmed).
    pub(crate) last_modified: Option<String>,
    /// `ETag`, trimmed and without its surrounding quotes.
    pub(crate) etag: Option<String>,
}

/// The fields of a ListObjectsV2 answer the driver uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListResult {
    /// The `Contents` entries, in document order.
    pub(crate) contents: Vec<ListEntry>,
    /// The `Prefix` of each `CommonPrefixes` that has one, in document order.
    pub(crate) common_prefixes: Vec<String>,
    /// `IsTruncated`; `None` when absent.
    pub(crate) is_truncated: Option<bool>,
    /// `NextContinuationToken` as sent; `None` when absent.
    pub(crate) next_continuation_token: Option<String>,
}

/// One step of the scan.
#[derive(Debug, PartialEq, Eq)]
enum Event<'a> {
    /// `<name …>`; the local name (namespace prefix removed).
    Start(&'a str),
    /// `</name>`; the local name.
    End(&'a str),
    /// `<name …/>`; the local name.
    Empty(&'a str),
    /// Character data (entities decoded) or a CDATA section's content.
    Text(Cow<'a, str>),
    /// The end of the input.
    Eof,
}

/// A pull scanner over the document text.
struct Scanner<'a> {
    doc: &'a str,
    pos: usize,
}

fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

impl<'a> Scanner<'a> {
    fn new(doc: &'a str) -> Self {
        let pos = if doc.starts_with('\u{feff}') { 3 } else { 0 };
        Scanner { doc, pos }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ListXmlError> {
        Err(ListXmlError {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn rest(&self) -> &'a str {
        self.doc.get(self.pos..).unwrap_or("")
    }

    /// Moves past `end`, which must occur in the rest; `what` names the construct for errors.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<&'a str, ListXmlError> {
        match self.rest().find(end) {
            Some(i) => {
                let inner = &self.rest()[..i];
                self.pos += i + end.len();
                Ok(inner)
            }
            None => self.err(format!("unterminated {what}")),
        }
    }

    /// The next event. Every call that returns `Ok` other than `Eof` consumes at least one byte.
    fn next(&mut self) -> Result<Event<'a>, ListXmlError> {
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return Ok(Event::Eof);
            }
            if !rest.starts_with('<') {
                let end = rest.find('<').unwrap_or(rest.len());
                let raw = &rest[..end];
                if let Some(i) = raw.find("]]>") {
                    self.pos += i;
                    return self.err("']]>' in character data");
                }
                let text = self.decode(raw)?;
                self.pos += end;
                return Ok(Event::Text(text));
            }
            if rest.starts_with("<!--") {
                self.pos += 4;
                let inner = self.skip_past("-->", "comment")?;
                if inner.contains("--") {
                    return self.err("'--' inside a comment");
                }
                continue;
            }
            if rest.starts_with("<![CDATA[") {
                self.pos += 9;
                let inner = self.skip_past("]]>", "CDATA section")?;
                return Ok(Event::Text(normalize_newlines(inner)));
            }
            if rest.starts_with("<?") {
                self.pos += 2;
                self.skip_past("?>", "processing instruction")?;
                continue;
            }
            if rest.starts_with("<!") {
                // A DTD could declare entities; S3 never sends one.
                return self.err("DOCTYPE or other declaration not accepted");
            }
            return self.tag();
        }
    }

    /// A start, end or empty-element tag at `pos` (which holds `<`).
    fn tag(&mut self) -> Result<Event<'a>, ListXmlError> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let closing = bytes.get(1) == Some(&b'/');
        let name_start = if closing { 2 } else { 1 };
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| is_name_byte(**b))
            .count();
        if name_len == 0 {
            return self.err("'<' not followed by an element name");
        }
        let name = &rest[name_start..name_start + name_len];
        let mut i = name_start + name_len;
        // Attributes: skipped, but quoted values may hold '>' and '/'.
        let mut quote: Option<u8> = None;
        loop {
            let Some(&b) = bytes.get(i) else {
                return self.err(format!("unterminated tag <{}", excerpt(name)));
            };
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'"' | b'\'' => {
                        if closing {
                            return self.err("attribute in an end tag");
                        }
                        quote = Some(b);
                    }
                    b'<' => return self.err("'<' inside a tag"),
                    b'>' => break,
                    _ => {}
                },
            }
            i += 1;
        }
        let empty = !closing && i > 0 && bytes[i - 1] == b'/';
        self.pos += i + 1;
        let local = local_name(name);
        if local.is_empty() {
            return self.err("element name without a local part");
        }
        Ok(if closing {
            Event::End(local)
        } else if empty {
            Event::Empty(local)
        } else {
            Event::Start(local)
        })
    }

    /// Character data with entity and character references decoded and line ends normalised.
    fn decode(&self, raw: &'a str) -> Result<Cow<'a, str>, ListXmlError> {
        if !raw.contains(['&', '\r']) {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(i) = rest.find(['&', '\r']) {
            out.push_str(&rest[..i]);
            if rest.as_bytes()[i] == b'\r' {
                out.push('\n');
                rest = &rest[i + 1..];
                if rest.starts_with('\n') {
                    rest = &rest[1..];
                }
                continue;
            }
            let after = &rest[i + 1..];
            // Longest legal reference: `#x10FFFF` or a named entity; cap the search.
            let Some(semi) = after.bytes().take(12).position(|b| b == b';') else {
                return Err(ListXmlError {
                    offset: self.pos + (raw.len() - rest.len()) + i,
                    message: "'&' not starting a reference".to_owned(),
                });
            };
            let reference = &after[..semi];
            let c = match reference {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                r => r.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix('x') {
                        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16).ok(),
                        Some(_) => None,
                        None => num.parse::<u32>().ok(),
                    }?;
                    // `+` or `-` signs parse as numbers but are not XML.
                    if num.contains(['+', '-']) || code == 0 {
                        return None;
                    }
                    char::from_u32(code)
                }),
            };
            let Some(c) = c else {
                return Err(ListXmlError {
                    offset: self.pos + (raw.len() - rest.len()) + i,
                    message: format!("unknown or invalid reference &{};", excerpt(reference)),
                });
            };
            out.push(c);
            rest = &after[semi + 1..];
        }
        out.push_str(rest);
        Ok(Cow::Owned(out))
    }
}

/// XML's line-end normalisation (`\r\n` and lone `\r` become `\n`), for CDATA content.
fn normalize_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}

/// At most 40 characters of server text, for error messages.
fn excerpt(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The reader proper: the scanner plus the element stack.
struct Reader<'a> {
    scan: Scanner<'a>,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ListXmlError> {
        self.scan.err(message)
    }

    fn next(&mut self) -> Result<Event<'a>, ListXmlError> {
        let ev = self.scan.next()?;
        match ev {
            Event::Start(_) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return self.err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
            }
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Ok(ev)
    }

    /// Skips the rest of element `name`, whose start tag was just read.
    fn skip(&mut self, name: &str) -> Result<(), ListXmlError> {
        let mut stack: Vec<&'a str> = vec![];
        loop {
            match self.next()? {
                Event::Start(n) => stack.push(n),
                Event::End(n) => match stack.pop() {
                    Some(open) if open == n => {}
                    Some(open) => return self.err(format!("</{n}> closes <{open}>")),
                    None if n == name => return Ok(()),
                    None => return self.err(format!("</{n}> closes <{name}>")),
                },
                Event::Empty(_) | Event::Text(_) => {}
                Event::Eof => return self.err(format!("document ends inside <{name}>")),
            }
        }
    }

    /// The text of leaf element `name`, whose start tag was just read (pieces joined).
    fn text(&mut self, name: &str) -> Result<String, ListXmlError> {
        let mut out = String::new();
        loop {
            match self.next()? {
                Event::Text(t) => out.push_str(&t),
                Event::End(n) if n == name => return Ok(out),
                Event::End(n) => return self.err(format!("</{n}> closes <{name}>")),
                Event::Start(n) | Event::Empty(n) => {
                    return self.err(format!("element <{n}> inside <{name}>"))
                }
                Event::Eof => return self.err(format!("document ends inside <{name}>")),
            }
        }
    }

    /// Children of an element are separated by whitespace only.
    fn between(&self, t: &str, parent: &str) -> Result<(), ListXmlError> {
        if t.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
            Ok(())
        } else {
            self.err(format!("text {:?} directly inside <{parent}>", excerpt(t)))
        }
    }

    fn number(&self, name: &str, v: &str) -> Result<u64, ListXmlError> {
        let t = v.trim_matches([' ', '\t', '\n', '\r']);
        // Digits only: `u64::from_str` would also take a leading `+`.
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return self.err(format!("<{name}> is not a number: {:?}", excerpt(v)));
        }
        t.parse::<u64>()
            .or_else(|_| self.err(format!("<{name}> out of range: {:?}", excerpt(v))))
    }

    fn boolean(&self, name: &str, v: &str) -> Result<bool, ListXmlError> {
        match v.trim_matches([' ', '\t', '\n', '\r']) {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => self.err(format!("<{name}> is not true/false: {:?}", excerpt(v))),
        }
    }

    fn contents(&mut self) -> Result<ListEntry, ListXmlError> {
        let mut e = ListEntry::default();
        loop {
            match self.next()? {
                Event::Start("Key") => e.key = Some(self.text("Key")?),
                Event::Start("Size") => {
                    let v = self.text("Size")?;
                    e.size = Some(self.number("Size", &v)?);
                }
                Event::Start("LastModified") => {
                    let v = self.text("LastModified")?;
                    e.last_modified = Some(v.trim().to_owned());
                }
                Event::Start("ETag") => {
                    let v = self.text("ETag")?;
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    e.etag = Some(v.to_owned());
                }
                Event::Start(n) => self.skip(n)?,
                Event::Empty("Key") => e.key = Some(String::new()),
                Event::Empty("Size") => return self.err("empty <Size>"),
                Event::Empty(_) => {}
                Event::Text(t) => self.between(&t, "Contents")?,
                Event::End("Contents") => return Ok(e),
                Event::End(n) => return self.err(format!("</{n}> closes <Contents>")),
                Event::Eof => return self.err("document ends inside <Contents>"),
            }
        }
    }

    fn common_prefix(&mut self) -> Result<Option<String>, ListXmlError> {
        let mut prefix = None;
        loop {
            match self.next()? {
                Event::Start("Prefix") => prefix = Some(self.text("Prefix")?),
                Event::Empty("Prefix") => prefix = Some(String::new()),
                Event::Start(n) => self.skip(n)?,
                Event::Empty(_) => {}
                Event::Text(t) => self.between(&t, "CommonPrefixes")?,
                Event::End("CommonPrefixes") => return Ok(prefix),
                Event::End(n) => return self.err(format!("</{n}> closes <CommonPrefixes>")),
                Event::Eof => return self.err("document ends inside <CommonPrefixes>"),
            }
        }
    }

    fn document(&mut self) -> Result<ListResult, ListXmlError> {
        // Prolog: whitespace, the declaration, comments.
        let root = loop {
            match self.next()? {
                Event::Text(t) => self.between(&t, "the document")?,
                Event::Start(n) => break n,
                Event::Empty(n) => {
                    if n != "ListBucketResult" {
                        return self.err(format!("root element <{n}>, not <ListBucketResult>"));
                    }
                    self.trailer()?;
                    return Ok(ListResult::default());
                }
                Event::End(n) => return self.err(format!("</{n}> before any element")),
                Event::Eof => return self.err("no root element"),
            }
        };
        if root != "ListBucketResult" {
            return self.err(format!(
                "root element <{}>, not <ListBucketResult>",
                excerpt(root)
            ));
        }
        let mut out = ListResult::default();
        loop {
            match self.next()? {
                Event::Start("Contents") => {
                    let e = self.contents()?;
                    out.contents.push(e);
                    self.cap(&out)?;
                }
                Event::Start("CommonPrefixes") => {
                    if let Some(p) = self.common_prefix()? {
                        out.common_prefixes.push(p);
                        self.cap(&out)?;
                    }
                }
                Event::Start("IsTruncated") => {
                    let v = self.text("IsTruncated")?;
                    out.is_truncated = Some(self.boolean("IsTruncated", &v)?);
                }
                Event::Start("NextContinuationToken") => {
                    out.next_continuation_token = Some(self.text("NextContinuationToken")?);
                }
                Event::Empty("NextContinuationToken") => {
                    out.next_continuation_token = Some(String::new());
                }
                Event::Empty("IsTruncated") => return self.err("empty <IsTruncated>"),
                Event::Empty("Contents") => {
                    out.contents.push(ListEntry::default());
                    self.cap(&out)?;
                }
                Event::Start(n) => self.skip(n)?,
                Event::Empty(_) => {}
                Event::Text(t) => self.between(&t, "ListBucketResult")?,
                Event::End("ListBucketResult") => break,
                Event::End(n) => return self.err(format!("</{n}> closes <ListBucketResult>")),
                Event::Eof => return self.err("document ends inside <ListBucketResult>"),
            }
        }
        self.trailer()?;
        Ok(out)
    }

    fn cap(&self, out: &ListResult) -> Result<(), ListXmlError> {
        if out.contents.len() + out.common_prefixes.len() > MAX_ENTRIES {
            return self.err(format!("more than {MAX_ENTRIES} entries"));
        }
        Ok(())
    }

    /// After the root: only whitespace, comments and processing instructions.
    fn trailer(&mut self) -> Result<(), ListXmlError> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Text(t) => self.between(&t, "the document")?,
                _ => return self.err("content after the root element"),
            }
        }
    }
}

/// Reads a ListObjectsV2 answer body. Non-UTF-8 bytes, a body over [`MAX_BODY`], an empty
/// body and any of the faults listed in the module documentation are errors.
pub(crate) fn parse(body: &[u8]) -> Result<ListResult, ListXmlError> {
    if body.len() > MAX_BODY {
        return Err(ListXmlError {
            offset: 0,
            message: format!("answer of {} bytes (at most {MAX_BODY})", body.len()),
        });
    }
    let doc = std::str::from_utf8(body).map_err(|e| ListXmlError {
        offset: e.valid_up_to(),
        message: "not UTF-8".to_owned(),
    })?;
    let mut r = Reader {
        scan: Scanner::new(doc),
        depth: 0,
    };
    r.document()
}

/// Not part of the API: what [`parse`] read, in public types, for the parse-cost example and
/// the `list_objects_v2` fuzz target.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListXmlFuzzOutput {
    /// Each `Contents` entry: `Key`, `Size`, `LastModified`.
    pub entries: Vec<(Option<String>, Option<u64>, Option<String>)>,
    /// The `Prefix` of each `CommonPrefixes`.
    pub common_prefixes: Vec<String>,
    /// `IsTruncated`.
    pub is_truncated: Option<bool>,
    /// `NextContinuationToken`.
    pub next_continuation_token: Option<String>,
}

impl From<ListResult> for ListXmlFuzzOutput {
    fn from(r: ListResult) -> Self {
        ListXmlFuzzOutput {
            entries: r
                .contents
                .into_iter()
                .map(|e| (e.key, e.size, e.last_modified))
                .collect(),
            common_prefixes: r.common_prefixes,
            is_truncated: r.is_truncated,
            next_continuation_token: r.next_continuation_token,
        }
    }
}

/// Not part of the API: [`parse`] of `body`, the error as text.
#[doc(hidden)]
pub fn fuzz_parse_list(body: &[u8]) -> Result<ListXmlFuzzOutput, String> {
    parse(body).map(Into::into).map_err(|e| e.to_string())
}

/// Answers every request with one canned body (feeds rusoto_s3's parser without a server).
struct Canned(bytes::Bytes);

impl rusoto_core::request::DispatchSignedRequest for Canned {
    fn dispatch(
        &self,
        _request: rusoto_core::signature::SignedRequest,
        _timeout: Option<std::time::Duration>,
    ) -> rusoto_core::request::DispatchSignedRequestFuture {
        let body = self.0.clone();
        Box::pin(async move {
            Ok(rusoto_core::request::HttpResponse {
                status: hyper::StatusCode::OK,
                body: rusoto_core::ByteStream::from(body.to_vec()),
                headers: Default::default(),
            })
        })
    }
}

/// Not part of the API: what rusoto_s3's own ListObjectsV2 parser makes of `body`, reduced to
/// the fields [`parse`] reads (a negative `Size` becomes `None`); `None` when it fails. The
/// reference for the differential test and fuzz target.
#[doc(hidden)]
pub async fn fuzz_rusoto_parse_list(body: &[u8]) -> Option<ListXmlFuzzOutput> {
    use rusoto_s3::S3 as _;
    let client = rusoto_s3::S3Client::new_with_client(
        rusoto_core::Client::new_not_signing(Canned(bytes::Bytes::copy_from_slice(body))),
        rusoto_core::Region::Custom {
            name: "us-east-1".to_owned(),
            endpoint: "http://127.0.0.1:1".to_owned(),
        },
    );
    let out = client
        .list_objects_v2(rusoto_s3::ListObjectsV2Request {
            bucket: "b".to_owned(),
            ..Default::default()
        })
        .await
        .ok()?;
    Some(ListXmlFuzzOutput {
        entries: out
            .contents
            .unwrap_or_default()
            .into_iter()
            .map(|o| {
                (
                    o.key,
                    o.size.and_then(|s| u64::try_from(s).ok()),
                    o.last_modified,
                )
            })
            .collect(),
        common_prefixes: out
            .common_prefixes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.prefix)
            .collect(),
        is_truncated: out.is_truncated,
        next_continuation_token: out.next_continuation_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, size: u64, t: &str, etag: &str) -> ListEntry {
        ListEntry {
            key: Some(key.to_owned()),
            size: Some(size),
            last_modified: Some(t.to_owned()),
            etag: Some(etag.to_owned()),
        }
    }

    /// A page as AWS S3 writes it (pretty-printed as in the API reference).
    const AWS_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>docker/registry/v2/</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>3</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>docker/registry/v2/a</Key>
    <LastModified>2026-11-23T15:35:23.000Z</LastModified>
    <ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag>
    <ChecksumAlgorithm>CRC32</ChecksumAlgorithm>
    <Size>857</Size>
    <Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>docker/registry/v2/b</Key>
    <LastModified>2026-11-23T15:35:24.000Z</LastModified>
    <ETag>"x"</ETag>
    <Size>0</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <CommonPrefixes>
    <Prefix>docker/registry/v2/blobs/</Prefix>
  </CommonPrefixes>
  <CommonPrefixes><Prefix>docker/registry/v2/repositories/</Prefix></CommonPrefixes>
  <EncodingType>url</EncodingType>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>
"#;

    #[test]
    fn reads_an_aws_page() {
        let r = parse(AWS_PAGE.as_bytes()).unwrap();
        assert_eq!(
            r.contents,
            vec![
                entry(
                    "docker/registry/v2/a",
                    857,
                    "2026-11-23T15:35:23.000Z",
                    "599bab3ed2c697f1d26842727561fd94"
                ),
                entry("docker/registry/v2/b", 0, "2026-11-23T15:35:24.000Z", "x"),
            ]
        );
        assert_eq!(
            r.common_prefixes,
            vec![
                "docker/registry/v2/blobs/".to_owned(),
                "docker/registry/v2/repositories/".to_owned()
            ]
        );
        assert_eq!(r.is_truncated, Some(true));
        assert_eq!(
            r.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
    }

    #[test]
    fn entities_cdata_prefixes_and_order() {
        let doc = "\u{feff}<?xml version='1.0'?><!-- hi --><s3:ListBucketResult \
                   xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\" a='x>y/'>\
                   <s3:NextContinuationToken>t&amp;&#x41;&#66;</s3:NextContinuationToken>\
                   <Contents><Size> 5 </Size><Key>a&lt;b&gt;c&quot;d&apos;e&amp;f</Key></Contents>\
                   <Contents><Key><![CDATA[x<&>y]]>z&#x1F600;</Key><Size>1</Size></Contents>\
                   <Contents><Key>line\r\nend\r</Key></Contents>\
                   <IsTruncated>\n false \n</IsTruncated>\
                   <Unknown><Deep><Deeper>t</Deeper><Contents/></Deep></Unknown>\
                   </s3:ListBucketResult><!-- bye -->\n";
        let r = parse(doc.as_bytes()).unwrap();
        assert_eq!(r.next_continuation_token.as_deref(), Some("t&AB"));
        assert_eq!(r.contents.len(), 3);
        assert_eq!(r.contents[0].key.as_deref(), Some("a<b>c\"d'e&f"));
        assert_eq!(r.contents[0].size, Some(5));
        assert_eq!(r.contents[0].last_modified, None);
        assert_eq!(r.contents[1].key.as_deref(), Some("x<&>yz\u{1F600}"));
        assert_eq!(r.contents[2].key.as_deref(), Some("line\nend\n"));
        assert_eq!(r.contents[2].size, None);
        assert_eq!(r.is_truncated, Some(false));
        assert!(r.common_prefixes.is_empty());
    }

    #[test]
    fn keys_keep_their_spaces() {
        let r =
            parse(b"<ListBucketResult><Contents><Key> a b </Key></Contents></ListBucketResult>")
                .unwrap();
        assert_eq!(r.contents[0].key.as_deref(), Some(" a b "));
    }

    #[test]
    fn missing_fields_are_none() {
        let r = parse(b"<ListBucketResult/>").unwrap();
        assert_eq!(r, ListResult::default());
        let r = parse(
            b"<ListBucketResult><Contents></Contents><CommonPrefixes/>\
              <CommonPrefixes><Other/></CommonPrefixes></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(r.contents, vec![ListEntry::default()]);
        assert!(r.common_prefixes.is_empty());
        assert_eq!(r.is_truncated, None);
        assert_eq!(r.next_continuation_token, None);
    }

    #[test]
    fn malformed_documents_are_errors() {
        let big = format!(
            "<ListBucketResult>{}</ListBucketResult>",
            "<a>".repeat(MAX_DEPTH + 1)
        );
        let cases: Vec<&[u8]> = vec![
            b"",
            b"   ",
            b"garbage",
            b"<",
            b"<>",
            b"</ListBucketResult>",
            b"<ListBucketResult>",
            b"<ListBucketResult><Contents><Key>a</Key>",
            b"<ListBucketResult><Contents><Key>a</Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>a</Key></Content></ListBucketResult>",
            b"<ListBucketResult></ListBucketResult><ListBucketResult></ListBucketResult>",
            b"<ListBucketResult></ListBucketResult>trailing",
            b"<Error><Code>NoSuchBucket</Code></Error>",
            b"<!DOCTYPE x [<!ENTITY e 'boom'>]><ListBucketResult>&e;</ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>a & b</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#x110000;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#99999999999999999999;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#x;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#-1;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#+65;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Size>18446744073709551616</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Size>-1</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Size>+1</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Size>1e3</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Size></Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Size/></Contents></ListBucketResult>",
            b"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
            b"<ListBucketResult><IsTruncated>TRUE</IsTruncated></ListBucketResult>",
            b"<ListBucketResult><IsTruncated/></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>a<b/></Key></Contents></ListBucketResult>",
            b"<ListBucketResult>text</ListBucketResult>",
            b"<ListBucketResult><Contents><Key>a]]>b</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents>x<Key>a</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><![CDATA[x</ListBucketResult>",
            b"<ListBucketResult><!-- x </ListBucketResult>",
            b"<ListBucketResult><!-- a -- b --></ListBucketResult>",
            b"<ListBucketResult a=\"x></ListBucketResult>",
            b"<ListBucketResult></ListBucketResult a=\"1\">",
            b"<ListBucketResult><a:></a:></ListBucketResult>",
            b"<ListBucketResult><Unknown><x></y></Unknown></ListBucketResult>",
            b"<ListBucketResult><Unknown></Other></ListBucketResult>",
            b"\xff\xfe<ListBucketResult/>",
            big.as_bytes(),
        ];
        for doc in cases {
            let e = parse(doc).expect_err(&String::from_utf8_lossy(doc));
            assert!(e.offset <= doc.len(), "{e}");
            assert!(e.to_string().contains("ListObjectsV2"), "{e}");
        }
    }

    #[test]
    fn huge_numbers_within_u64_are_kept() {
        let r = parse(
            b"<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551615</Size>\
              </Contents></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(r.contents[0].size, Some(u64::MAX));
    }

    #[test]
    fn every_prefix_of_a_page_is_an_error_not_a_panic() {
        // A truncated answer: every cut before the root's end tag must fail cleanly.
        let doc = AWS_PAGE.as_bytes();
        let end = AWS_PAGE.find("</ListBucketResult>").unwrap_or(0);
        for cut in 0..end {
            if std::str::from_utf8(&doc[..cut]).is_ok() {
                assert!(parse(&doc[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn entry_cap() {
        let doc = format!(
            "<ListBucketResult>{}</ListBucketResult>",
            "<Contents/>".repeat(MAX_ENTRIES + 1)
        );
        assert!(parse(doc.as_bytes()).is_err());
    }

    // ---- differential test against rusoto_s3's own parser ----

    /// Documents both readers must read the same way.
    fn corpus() -> Vec<String> {
        let mut docs = vec![AWS_PAGE.to_owned()];
        // Garage-like compact page, as in examples/list_parse_cost.rs.
        let mut g = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix>\
             <KeyCount>50</KeyCount><MaxKeys>50</MaxKeys><IsTruncated>true</IsTruncated>\
             <NextContinuationToken>cC9mMDAwNDk=</NextContinuationToken>",
        );
        for i in 0..50 {
            g.push_str(&format!(
                "<Contents><Key>p/d{}/f{i:05}</Key><LastModified>2026-11-23T18:26:43.181Z\
                 </LastModified><ETag>\"9dd4e461268c8034f5c8564e155c67a6\"</ETag>\
                 <Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                i / 10,
                i * 1_000_003
            ));
        }
        g.push_str("</ListBucketResult>");
        docs.push(g);
        // Entities in keys, prefixes and tokens; RGW-style owner blocks; empty listing.
        docs.push(
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Contents><Key>a&amp;b&lt;c&gt;d&quot;e&apos;f&#x2F;&#47;</Key><Size>7</Size>\
             <Owner><ID>o</ID></Owner><LastModified>2026-01-01T00:00:00Z</LastModified></Contents>\
             <CommonPrefixes><Prefix>x&amp;y/</Prefix></CommonPrefixes>\
             <IsTruncated>false</IsTruncated></ListBucketResult>"
                .to_owned(),
        );
        docs.push(
            "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><IsTruncated>false\
             </IsTruncated><KeyCount>0</KeyCount></ListBucketResult>"
                .to_owned(),
        );
        docs.push(
            "<ListBucketResult><Contents><Size>9223372036854775807</Size><Key>big</Key>\
             </Contents><NextContinuationToken>t==</NextContinuationToken>\
             <IsTruncated>true</IsTruncated><Contents><Key>\u{e9}\u{4e2d}</Key><Size>0</Size>\
             </Contents></ListBucketResult>"
                .to_owned(),
        );
        docs
    }

    #[tokio::test]
    async fn agrees_with_rusoto_on_well_formed_pages() {
        let docs = corpus();
        for doc in &docs {
            let ours = fuzz_parse_list(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{doc}"));
            let theirs = fuzz_rusoto_parse_list(doc.as_bytes())
                .await
                .unwrap_or_else(|| panic!("rusoto: {doc}"));
            assert_eq!(ours, theirs, "{doc}");
            assert!(!ours.entries.is_empty() || !doc.contains("<Contents>"));
        }
        assert_eq!(docs.len(), 5);
    }
}
