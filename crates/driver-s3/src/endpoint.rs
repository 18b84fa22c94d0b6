//! Endpoint selection: which host a request goes to and how the bucket is addressed.
//!
//! Pure functions of the configuration, so every combination can be tested without a network.
//! With `regionendpoint` set, that URL is used as given (S3-compatible stores, VPC endpoints).
//! Without it, the Amazon S3 endpoint is derived from `region`, following the AWS SDKs' S3
//! endpoint rules:
//!
//! | options | host |
//! |---|---|
//! | — | `s3.<region>.<suffix>` |
//! | `usedualstack` | `s3.dualstack.<region>.<suffix>` |
//! | `usefipsendpoint` | `s3-fips.<region>.<suffix>` |
//! | both | `s3-fips.dualstack.<region>.<suffix>` |
//! | `accelerate` | `s3-accelerate.<suffix>` (no region) |
//! | `accelerate` + `usedualstack` | `s3-accelerate.dualstack.<suffix>` |
//!
//! The DNS suffix comes from the region's *partition*, recognised by the region name's shape
//! (as the SDKs' partition table does), never from a list of regions: a region AWS opens
//! tomorrow works today. `cn-*` is `amazonaws.com.cn`, `us-gov-*` is GovCloud
//! (`amazonaws.com`), the isolated partitions have their own suffixes, and anything else is the
//! standard `aws` partition.
//!
//! Addressing is virtual-hosted (`<bucket>.<host>`) unless `forcepathstyle` is set or the
//! bucket cannot be a TLS-safe host label (dots, upper case, underscores): those stay
//! path-style (`<host>/<bucket>`), as the SDKs do. Transfer Acceleration only exists
//! virtual-hosted, so it refuses such buckets and `forcepathstyle`.
//!
//! Refused combinations (the rules of the AWS SDKs' S3 endpoint resolution; aws-sdk-go v1,
//! which distribution uses, fails the same requests later or silently ignores the option):
//! `accelerate` with `usefipsendpoint`, with `forcepathstyle`, with a bucket that is not a
//! DNS-compatible name without dots, with `regionendpoint`, or outside the standard partition;
//! `usedualstack` or `usefipsendpoint` with `regionendpoint` (the custom URL is the endpoint:
//! point it at the dual-stack or FIPS host instead); `usefipsendpoint` in the China partition
//! and `usedualstack` in the isolated partitions, which have no such endpoints.

use std::fmt;

/// An AWS partition: a group of regions sharing a DNS suffix and feature set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The partition's name as the SDKs spell it (`aws`, `aws-cn`, `aws-us-gov`, …).
    pub name: &'static str,
    /// DNS suffix of its endpoints.
    pub dns_suffix: &'static str,
    /// Whether S3 has FIPS endpoints there.
    pub fips: bool,
    /// Whether S3 has dual-stack (IPv6) endpoints there.
    pub dualstack: bool,
    /// Whether S3 Transfer Acceleration exists there.
    pub accelerate: bool,
}

const AWS: Partition = Partition {
    name: "aws",
    dns_suffix: "amazonaws.com",
    fips: true,
    dualstack: true,
    accelerate: true,
};

/// Partitions other than `aws`, by the region-name prefix that selects them. Checked in order;
/// longer prefixes first where one extends another (`us-isob-` before `us-iso-`).
const PARTITIONS: &[(&str, Partition)] = &[
    (
        "cn-",
        Partition {
            name: "aws-cn",
            dns_suffix: "amazonaws.com.cn",
            fips: false,
            dualstack: true,
            accelerate: false,
        },
    ),
    (
        "us-gov-",
        Partition {
            name: "aws-us-gov",
            dns_suffix: "amazonaws.com",
            fips: true,
            dualstack: true,
            accelerate: false,
        },
    ),
    (
        "us-isob-",
        Partition {
            name: "aws-iso-b",
            dns_suffix: "sc2s.sgov.gov",
            fips: true,
            dualstack: false,
            accelerate: false,
        },
    ),
    (
        "us-isof-",
        Partition {
            name: "aws-iso-f",
            dns_suffix: "csp.hci.ic.gov",
            fips: true,
            dualstack: false,
            accelerate: false,
        },
    ),
    (
        "us-iso-",
        Partition {
            name: "aws-iso",
            dns_suffix: "c2s.ic.gov",
            fips: true,
            dualstack: false,
            accelerate: false,
        },
    ),
    (
        "eu-isoe-",
        Partition {
            name: "aws-iso-e",
            dns_suffix: "cloud.adc-e.uk",
            fips: true,
            dualstack: false,
            accelerate: false,
        },
    ),
    (
        "eusc-",
        Partition {
            name: "aws-eusc",
            dns_suffix: "amazonaws.eu",
            fips: true,
            dualstack: false,
            accelerate: false,
        },
    ),
];

/// The partition of `region`, from its name's prefix; the standard `aws` partition for any
/// other name (new regions included).
pub fn partition(region: &str) -> Partition {
    PARTITIONS
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or(AWS, |(_, p)| *p)
}

/// Whether `host` is an Amazon S3 host (any partition's DNS suffix), for the `v4auth` rule.
pub fn is_amazon_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    std::iter::once(&AWS)
        .chain(PARTITIONS.iter().map(|(_, p)| p))
        .any(|p| host == p.dns_suffix || host.ends_with(&format!(".{}", p.dns_suffix)))
}

/// Whether `region` can be used in an Amazon S3 host name: one DNS label of lower-case
/// letters, digits and hyphens, 1–63 characters, not starting or ending with a hyphen. This is
/// the only check on the region: there is no list of known regions.
pub fn valid_region(region: &str) -> bool {
    (1..=63).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// Whether `bucket` can be the first label of a host name under TLS: 3–63 lower-case letters,
/// digits and hyphens, starting and ending with a letter or digit. Dots are excluded: a dotted
/// bucket name would not match the endpoint's wildcard certificate. Buckets failing this are
/// addressed path-style.
pub fn virtual_hostable(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// The inputs of endpoint selection (the matching [`crate::config::S3Config`] fields).
#[derive(Debug, Clone, Copy)]
pub struct EndpointOptions<'a> {
    /// `region`.
    pub region: &'a str,
    /// `regionendpoint`, parsed.
    pub region_endpoint: Option<&'a url::Url>,
    /// `bucket`.
    pub bucket: &'a str,
    /// `secure`: scheme of a derived endpoint.
    pub secure: bool,
    /// `forcepathstyle`.
    pub force_path_style: bool,
    /// `usedualstack`.
    pub dualstack: bool,
    /// `usefipsendpoint`.
    pub fips: bool,
    /// `accelerate`.
    pub accelerate: bool,
}

/// A refused combination: the parameter to name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError {
    /// The configuration parameter the error is reported against.
    pub parameter: &'static str,
    /// What is wrong and what to do instead.
    pub message: String,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.parameter, self.message)
    }
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, host, optional port and optional base path, no trailing `/`
    /// (`https://s3.eu-west-1.amazonaws.com`, `http://minio:9000/s3`): the service endpoint,
    /// before the bucket is added.
    pub base: String,
    /// `true`: `<base>/<bucket>/<key>`; `false`: `<scheme>://<bucket>.<host>/<key>`.
    pub path_style: bool,
}

impl Endpoint {
    /// The URL of `key` (unencoded characters are left to the caller; tests use plain keys).
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        if self.path_style {
            format!("{}/{bucket}/{key}", self.base)
        } else {
            let (scheme, rest) = self.base.split_once("://").unwrap_or(("https", &self.base));
            format!("{scheme}://{bucket}.{rest}/{key}")
        }
    }
}

fn refuse(parameter: &'static str, message: impl Into<String>) -> EndpointError {
    EndpointError {
        parameter,
        message: message.into(),
    }
}

/// `regionendpoint` as rusoto's custom region expects it: no trailing `/`.
fn custom_base(url: &url::Url) -> String {
    let mut s = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        s.push_str(host);
    }
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s.push_str(url.path().trim_end_matches('/'));
    s
}

/// Selects the endpoint for `o`, or says which option combination is refused (see the module
/// documentation).
pub fn resolve(o: &EndpointOptions<'_>) -> Result<Endpoint, EndpointError> {
    let path_style = o.force_path_style || !virtual_hostable(o.bucket);
    if let Some(url) = o.region_endpoint {
        for (on, parameter, what) in [
            (o.accelerate, "accelerate", "Transfer Acceleration endpoint"),
            (o.dualstack, "usedualstack", "dual-stack endpoint"),
            (o.fips, "usefipsendpoint", "FIPS endpoint"),
        ] {
            if on {
                return Err(refuse(
                    parameter,
                    format!(
                        "cannot be combined with regionendpoint: the custom endpoint is used as \
                         given; set regionendpoint to the {what} itself, or remove it to let \
                         the driver derive the Amazon S3 endpoint from region"
                    ),
                ));
            }
        }
        return Ok(Endpoint {
            base: custom_base(url),
            path_style,
        });
    }
    if !valid_region(o.region) {
        return Err(refuse(
            "region",
            format!(
                "must be a region name usable in a host name (lower-case letters, digits and \
                 hyphens, such as eu-west-1), got {:?}",
                o.region
            ),
        ));
    }
    let p = partition(o.region);
    let scheme = if o.secure { "https" } else { "http" };
    if o.fips && !p.fips {
        return Err(refuse(
            "usefipsendpoint",
            format!(
                "the {} partition (region {}) has no FIPS endpoints for S3",
                p.name, o.region
            ),
        ));
    }
    if o.dualstack && !p.dualstack {
        return Err(refuse(
            "usedualstack",
            format!(
                "the {} partition (region {}) has no dual-stack endpoints for S3",
                p.name, o.region
            ),
        ));
    }
    if o.accelerate {
        if o.fips {
            return Err(refuse(
                "accelerate",
                "cannot be combined with usefipsendpoint: S3 Transfer Acceleration has no \
                 FIPS endpoints",
            ));
        }
        if !p.accelerate {
            return Err(refuse(
                "accelerate",
                format!(
                    "S3 Transfer Acceleration is not available in the {} partition (region {})",
                    p.name, o.region
                ),
            ));
        }
        if o.force_path_style {
            return Err(refuse(
                "accelerate",
                "cannot be combined with forcepathstyle: Transfer Acceleration endpoints only \
                 serve virtual-hosted requests (<bucket>.s3-accelerate.amazonaws.com)",
            ));
        }
        if !virtual_hostable(o.bucket) {
            return Err(refuse(
                "accelerate",
                format!(
                    "needs a DNS-compatible bucket name without dots (3-63 lower-case letters, \
                     digits and hyphens); bucket {:?} cannot use Transfer Acceleration",
                    o.bucket
                ),
            ));
        }
        let host = if o.dualstack {
            format!("s3-accelerate.dualstack.{}", p.dns_suffix)
        } else {
            format!("s3-accelerate.{}", p.dns_suffix)
        };
        return Ok(Endpoint {
            base: format!("{scheme}://{host}"),
            path_style: false,
        });
    }
    let service = if o.fips { "s3-fips" } else { "s3" };
    let dualstack = if o.dualstack { ".dualstack" } else { "" };
    Ok(Endpoint {
        base: format!(
            "{scheme}://{service}{dualstack}.{}.{}",
            o.region, p.dns_suffix
        ),
        path_style,
    })
}

/// The scheme and `host[:port]` a presigned redirect URL is rewritten to when
/// `redirectendpoint` is set. Applied before signing, so the signature covers the public host;
/// the path (and with it path-style bucket addressing) is unchanged.
pub fn redirect_authority(redirect: &url::Url) -> (String, String) {
    let host = redirect.host_str().unwrap_or_default();
    let authority = match redirect.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    (redirect.scheme().to_owned(), authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(region: &'a str, bucket: &'a str) -> EndpointOptions<'a> {
        EndpointOptions {
            region,
            region_endpoint: None,
            bucket,
            secure: true,
            force_path_style: false,
            dualstack: false,
            fips: false,
            accelerate: false,
        }
    }

    /// (region, bucket, dualstack, fips, accelerate) → object URL of key `k`, or the refused
    /// parameter.
    #[test]
    fn table_of_region_dualstack_fips_accelerate_bucket() {
        type Case = (
            &'static str,
            &'static str,
            bool,
            bool,
            bool,
            Result<&'static str, &'static str>,
        );
        let cases: &[Case] = &[
            // Standard partition, every combination.
            (
                "us-east-1",
                "bkt",
                false,
                false,
                false,
                Ok("https://bkt.s3.us-east-1.amazonaws.com/k"),
            ),
            (
                "eu-west-1",
                "bkt",
                true,
                false,
                false,
                Ok("https://bkt.s3.dualstack.eu-west-1.amazonaws.com/k"),
            ),
            (
                "us-east-2",
                "bkt",
                false,
                true,
                false,
                Ok("https://bkt.s3-fips.us-east-2.amazonaws.com/k"),
            ),
            (
                "us-east-2",
                "bkt",
                true,
                true,
                false,
                Ok("https://bkt.s3-fips.dualstack.us-east-2.amazonaws.com/k"),
            ),
            (
                "eu-west-1",
                "bkt",
                false,
                false,
                true,
                Ok("https://bkt.s3-accelerate.amazonaws.com/k"),
            ),
            (
                "eu-west-1",
                "bkt",
                true,
                false,
                true,
                Ok("https://bkt.s3-accelerate.dualstack.amazonaws.com/k"),
            ),
            ("eu-west-1", "bkt", false, true, true, Err("accelerate")),
            ("eu-west-1", "bkt", true, true, true, Err("accelerate")),
            // Dotted and non-DNS bucket names: path style, and no acceleration.
            (
                "us-east-1",
                "my.bucket",
                false,
                false,
                false,
                Ok("https://s3.us-east-1.amazonaws.com/my.bucket/k"),
            ),
            (
                "us-west-2",
                "my.bucket",
                true,
                false,
                false,
                Ok("https://s3.dualstack.us-west-2.amazonaws.com/my.bucket/k"),
            ),
            (
                "us-west-2",
                "my.bucket",
                false,
                true,
                false,
                Ok("https://s3-fips.us-west-2.amazonaws.com/my.bucket/k"),
            ),
            (
                "us-west-2",
                "my.bucket",
                false,
                false,
                true,
                Err("accelerate"),
            ),
            (
                "us-west-2",
                "My_Bucket",
                false,
                false,
                false,
                Ok("https://s3.us-west-2.amazonaws.com/My_Bucket/k"),
            ),
            (
                "us-west-2",
                "My_Bucket",
                false,
                false,
                true,
                Err("accelerate"),
            ),
            (
                "us-west-2",
                "ab",
                false,
                false,
                false,
                Ok("https://s3.us-west-2.amazonaws.com/ab/k"),
            ),
            // A region no SDK knows yet: standard partition, no list to update.
            (
                "xx-future-9",
                "bkt",
                false,
                false,
                false,
                Ok("https://bkt.s3.xx-future-9.amazonaws.com/k"),
            ),
            (
                "ap-southeast-7",
                "bkt",
                true,
                true,
                false,
                Ok("https://bkt.s3-fips.dualstack.ap-southeast-7.amazonaws.com/k"),
            ),
            // China.
            (
                "cn-north-1",
                "bkt",
                false,
                false,
                false,
                Ok("https://bkt.s3.cn-north-1.amazonaws.com.cn/k"),
            ),
            (
                "cn-northwest-1",
                "bkt",
                true,
                false,
                false,
                Ok("https://bkt.s3.dualstack.cn-northwest-1.amazonaws.com.cn/k"),
            ),
            (
                "cn-north-1",
                "my.bucket",
                false,
                false,
                false,
                Ok("https://s3.cn-north-1.amazonaws.com.cn/my.bucket/k"),
            ),
            (
                "cn-north-1",
                "bkt",
                false,
                true,
                false,
                Err("usefipsendpoint"),
            ),
            ("cn-north-1", "bkt", false, false, true, Err("accelerate")),
            // GovCloud.
            (
                "us-gov-west-1",
                "bkt",
                false,
                false,
                false,
                Ok("https://bkt.s3.us-gov-west-1.amazonaws.com/k"),
            ),
            (
                "us-gov-west-1",
                "bkt",
                false,
                true,
                false,
                Ok("https://bkt.s3-fips.us-gov-west-1.amazonaws.com/k"),
            ),
            (
                "us-gov-east-1",
                "bkt",
                true,
                true,
                false,
                Ok("https://bkt.s3-fips.dualstack.us-gov-east-1.amazonaws.com/k"),
            ),
            (
                "us-gov-east-1",
                "my.bucket",
                false,
                true,
                false,
                Ok("https://s3-fips.us-gov-east-1.amazonaws.com/my.bucket/k"),
            ),
            (
                "us-gov-west-1",
                "bkt",
                false,
                false,
                true,
                Err("accelerate"),
            ),
            // Isolated partitions.
            (
                "us-iso-east-1",
                "bkt",
                false,
                false,
                false,
                Ok("https://bkt.s3.us-iso-east-1.c2s.ic.gov/k"),
            ),
            (
                "us-isob-east-1",
                "bkt",
                false,
                true,
                false,
                Ok("https://bkt.s3-fips.us-isob-east-1.sc2s.sgov.gov/k"),
            ),
            (
                "us-iso-east-1",
                "bkt",
                true,
                false,
                false,
                Err("usedualstack"),
            ),
            (
                "eu-isoe-west-1",
                "bkt",
                false,
                false,
                false,
                Ok("https://bkt.s3.eu-isoe-west-1.cloud.adc-e.uk/k"),
            ),
            // Regions that cannot be a host label.
            ("US-EAST-1", "bkt", false, false, false, Err("region")),
            ("us east 1", "bkt", false, false, false, Err("region")),
            ("evil.com/x", "bkt", false, false, false, Err("region")),
            ("-us-east-1", "bkt", false, false, false, Err("region")),
        ];
        for (region, bucket, dualstack, fips, accelerate, want) in cases {
            let o = EndpointOptions {
                dualstack: *dualstack,
                fips: *fips,
                accelerate: *accelerate,
                ..opts(region, bucket)
            };
            let got = resolve(&o)
                .map(|e| e.object_url(bucket, "k"))
                .map_err(|e| e.parameter);
            let want = want.map(str::to_owned);
            assert_eq!(got, want, "{o:?}");
        }
    }

    #[test]
    fn secure_false_and_forced_path_style() {
        let o = EndpointOptions {
            secure: false,
            ..opts("eu-central-1", "bkt")
        };
        assert_eq!(
            resolve(&o).unwrap().object_url("bkt", "k"),
            "http://bkt.s3.eu-central-1.amazonaws.com/k"
        );
        let o = EndpointOptions {
            force_path_style: true,
            dualstack: true,
            ..opts("eu-central-1", "bkt")
        };
        assert_eq!(
            resolve(&o).unwrap().object_url("bkt", "k"),
            "https://s3.dualstack.eu-central-1.amazonaws.com/bkt/k"
        );
        let o = EndpointOptions {
            force_path_style: true,
            accelerate: true,
            ..opts("eu-central-1", "bkt")
        };
        let e = resolve(&o).unwrap_err();
        assert_eq!(e.parameter, "accelerate");
        assert!(e.message.contains("forcepathstyle"), "{e}");
    }

    #[test]
    fn custom_endpoint_used_as_given_and_refuses_aws_only_options() {
        let url = url::Url::parse("http://minio:9000/s3/").unwrap();
        let base = EndpointOptions {
            region_endpoint: Some(&url),
            force_path_style: true,
            // Any region string signs requests for a custom endpoint.
            ..opts("Garage Region", "my.bucket")
        };
        let e = resolve(&base).unwrap();
        assert_eq!(e.base, "http://minio:9000/s3");
        assert_eq!(
            e.object_url("my.bucket", "k"),
            "http://minio:9000/s3/my.bucket/k"
        );
        let vhost = EndpointOptions {
            force_path_style: false,
            ..base
        };
        assert_eq!(
            resolve(&EndpointOptions {
                bucket: "bkt",
                ..vhost
            })
            .unwrap()
            .object_url("bkt", "k"),
            "http://bkt.minio:9000/s3/k"
        );
        for (o, param) in [
            (
                EndpointOptions {
                    accelerate: true,
                    ..base
                },
                "accelerate",
            ),
            (
                EndpointOptions {
                    dualstack: true,
                    ..base
                },
                "usedualstack",
            ),
            (EndpointOptions { fips: true, ..base }, "usefipsendpoint"),
        ] {
            let e = resolve(&o).unwrap_err();
            assert_eq!(e.parameter, param);
            assert!(e.message.contains("regionendpoint"), "{e}");
        }
    }

    #[test]
    fn partitions_and_amazon_hosts() {
        assert_eq!(partition("us-gov-west-1").name, "aws-us-gov");
        assert_eq!(partition("us-isob-east-1").name, "aws-iso-b");
        assert_eq!(partition("us-iso-west-1").name, "aws-iso");
        assert_eq!(partition("us-east-1").name, "aws");
        assert_eq!(partition("cn-north-1").dns_suffix, "amazonaws.com.cn");
        for h in [
            "s3.amazonaws.com",
            "s3.eu-central-1.amazonaws.com",
            "bucket.s3.cn-north-1.amazonaws.com.cn",
            "S3.US-EAST-1.AMAZONAWS.COM.",
            "s3.us-iso-east-1.c2s.ic.gov",
        ] {
            assert!(is_amazon_host(h), "{h}");
        }
        for h in [
            "minio",
            "amazonaws.com.evil.example",
            "notamazonaws.com",
            "127.0.0.1",
        ] {
            assert!(!is_amazon_host(h), "{h}");
        }
    }

    #[test]
    fn bucket_and_region_names() {
        for b in ["abc", "my-bucket-1", "123"] {
            assert!(virtual_hostable(b), "{b}");
        }
        for b in [
            "my.bucket",
            "My-Bucket",
            "ab",
            "-ab",
            "ab-",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(!virtual_hostable(b), "{b}");
        }
        assert!(valid_region("il-central-1") && valid_region("x"));
        assert!(!valid_region("") && !valid_region(&"a".repeat(64)) && !valid_region("eu-west-1."));
    }

    #[test]
    fn redirect_authority_keeps_port() {
        let u = url::Url::parse("https://cdn.example:8443/").unwrap();
        assert_eq!(
            redirect_authority(&u),
            ("https".to_owned(), "cdn.example:8443".to_owned())
        );
        let u = url::Url::parse("http://cdn.example").unwrap();
        assert_eq!(
            redirect_authority(&u),
            ("http".to_owned(), "cdn.example".to_owned())
        );
    }
}
