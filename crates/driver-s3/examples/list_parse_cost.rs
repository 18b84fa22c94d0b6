//! What parsing one ListObjectsV2 page of 1000 keys costs the client, without any server.
//!
//! The S3 walk of 10,000 objects costs regstore and object_store the same 10 ListObjectsV2
//! requests, yet regstore is slower (docs/benchmarks.md). This example times the part that is
//! client CPU only: rusoto_s3 turning a canned 1000-entry answer into its output struct (what
//! `s3api::list_objects_v2` called until the driver got its own reader), the driver's own
//! reader (`listxml`, what it calls now), and a plain scan of the same bytes for `<Key>`,
//! `<Size>` and `<LastModified>` (a lower bound for any parser).
//!
//! ```sh
//! cargo run --release -p regstore-driver-s3 --example list_parse_cost
//! ```

use std::time::{Duration, Instant};

use rusoto_core::request::{DispatchSignedRequest, DispatchSignedRequestFuture, HttpResponse};
use rusoto_core::signature::SignedRequest;
use rusoto_core::{ByteStream, Client, Region};
use rusoto_s3::{ListObjectsV2Request, S3Client, S3};

/// A page shaped like Garage's answer for the benchmark's tree (100 directories of files).
fn page() -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult \
         xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>regstore-bench</Name>\
         <Prefix>bench/1795458394/r0/regstore/tree/</Prefix><KeyCount>1000</KeyCount>\
         <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>\
         <NextContinuationToken>YmVuY2gvMTc5NTQ1ODM5NC9yMC9yZWdzdG9yZS90cmVlL2QwMDEvZjAwOTk5</NextContinuationToken>",
    );
    for i in 0..1000 {
        xml.push_str(&format!(
            "<Contents><Key>bench/1795458394/r0/regstore/tree/d{:03}/f{i:05}</Key>\
             <LastModified>2026-11-23T18:26:43.181Z</LastModified>\
             <ETag>\"9dd4e461268c8034f5c8564e155c67a6\"</ETag><Size>1</Size>\
             <StorageClass>STANDARD</StorageClass></Contents>",
            i / 100
        ));
    }
    xml.push_str("</ListBucketResult>");
    xml
}

/// Answers every request with the canned page.
struct Canned(bytes::Bytes);

impl DispatchSignedRequest for Canned {
    fn dispatch(
        &self,
        _request: SignedRequest,
        _timeout: Option<Duration>,
    ) -> DispatchSignedRequestFuture {
        let body = self.0.clone();
        Box::pin(async move {
            Ok(HttpResponse {
                status: hyper::StatusCode::OK,
                body: ByteStream::from(body.to_vec()),
                headers: Default::default(),
            })
        })
    }
}

/// Counts the fields a walk needs by scanning for their tags (no allocation per entry).
fn scan(xml: &str) -> (usize, u64) {
    let mut keys = 0;
    let mut size = 0;
    let mut rest = xml;
    while let Some(i) = rest.find("<Key>") {
        rest = &rest[i + 5..];
        let Some(end) = rest.find("</Key>") else {
            break;
        };
        keys += usize::from(end > 0);
        rest = &rest[end..];
        if let Some(s) = rest.find("<Size>") {
            let v = &rest[s + 6..];
            if let Some(e) = v.find('<') {
                size += v[..e].parse::<u64>().unwrap_or(0);
            }
        }
    }
    (keys, size)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let xml = page();
    let body = bytes::Bytes::from(xml.clone());
    let client = S3Client::new_with_client(
        Client::new_not_signing(Canned(body)),
        Region::Custom {
            name: "us-east-1".to_owned(),
            endpoint: "http://127.0.0.1:1".to_owned(),
        },
    );
    let rounds = 50u32;
    let mut entries = 0;
    let t = Instant::now();
    for _ in 0..rounds {
        let out = client
            .list_objects_v2(ListObjectsV2Request {
                bucket: "b".to_owned(),
                ..Default::default()
            })
            .await;
        match out {
            Ok(o) => entries = o.contents.map(|c| c.len()).unwrap_or(0),
            Err(e) => {
                eprintln!("list_objects_v2 failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let rusoto = t.elapsed() / rounds;
    let t = Instant::now();
    let mut scanned = (0, 0);
    for _ in 0..rounds {
        scanned = scan(std::hint::black_box(&xml));
    }
    let plain = t.elapsed() / rounds;
    let t = Instant::now();
    let mut ours_entries = 0;
    for _ in 0..rounds {
        match regstore_driver_s3::test_support::fuzz_parse_list(std::hint::black_box(
            xml.as_bytes(),
        )) {
            Ok(o) => ours_entries = o.entries.len(),
            Err(e) => {
                eprintln!("listxml failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let ours = t.elapsed() / rounds;
    println!(
        "page of {} bytes, {entries} entries: rusoto_s3 parse {:.2} ms/page, driver's listxml \
         reader ({ours_entries} entries) {:.3} ms/page, plain scan ({} keys) {:.3} ms/page",
        xml.len(),
        rusoto.as_secs_f64() * 1e3,
        ours.as_secs_f64() * 1e3,
        scanned.0,
        plain.as_secs_f64() * 1e3
    );
}
