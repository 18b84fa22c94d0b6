//! Prints a CloudFront signed URL (canned policy), so a URL can be checked by hand:
//!
//! ```text
//! cargo run -p regstore-middleware-cloudfront --example sign -- \
//!     --private-key K --key-pair-id ID --url U --expires EPOCH [--hash sha1|sha256]
//! ```
//!
//! The key is a PEM file (RSA PKCS#1/PKCS#8 or ECDSA P-256 PKCS#8/SEC1). Without `--hash`,
//! RSA keys sign with SHA-1 and ECDSA keys with SHA-256. Exit status 2 for bad arguments, 1 for
//! a key or URL that cannot be used.

use std::process::ExitCode;

use clap::Parser;
use regstore_middleware_cloudfront::{HashAlgorithm, UrlSigner};

/// Print a CloudFront signed URL (canned policy).
#[derive(Debug, Parser)]
#[command(name = "sign")]
struct Args {
    /// PEM private key file.
    #[arg(long, value_name = "FILE")]
    private_key: std::path::PathBuf,
    /// CloudFront key pair id or public key id.
    #[arg(long, value_name = "ID")]
    key_pair_id: String,
    /// The URL to sign (absolute http or https).
    #[arg(long, value_name = "URL")]
    url: String,
    /// Expiry as Unix seconds.
    #[arg(long, value_name = "EPOCH")]
    expires: u64,
    /// Hash algorithm: sha1 or sha256.
    #[arg(long, value_name = "ALG", value_parser = parse_hash)]
    hash: Option<HashAlgorithm>,
}

fn parse_hash(s: &str) -> Result<HashAlgorithm, String> {
    HashAlgorithm::parse(s).ok_or_else(|| format!("expected sha1 or sha256, got {s:?}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pem = match std::fs::read(&args.private_key) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sign: cannot read {}: {e}", args.private_key.display());
            return ExitCode::from(1);
        }
    };
    let signed = UrlSigner::from_pem(&pem, args.key_pair_id, args.hash)
        .and_then(|signer| signer.sign_canned(&args.url, args.expires));
    match signed {
        Ok(url) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sign: {e}");
            ExitCode::from(1)
        }
    }
}
