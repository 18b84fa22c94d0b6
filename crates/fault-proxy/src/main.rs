//! `regstore-fault-proxy`: run the fault-injection proxy in front of a local S3 server.
//!
//! Prints the proxy's endpoint on the first line of standard output, serves until the run time
//! is over or the connection budget is used, then prints the fault counts and exits.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use regstore_fault_proxy::{FaultKind, FaultProxy, ProxyConfig};

/// Loopback-only HTTP fault-injection proxy for S3 tests.
#[derive(Parser)]
#[command(name = "regstore-fault-proxy")]
struct Args {
    /// The S3 server to forward to (must be 127.0.0.0/8 or [::1]), e.g. 127.0.0.1:9007.
    #[arg(long)]
    upstream: SocketAddr,
    /// Fraction of requests that get a fault, 0.0–1.0.
    #[arg(long, default_value_t = 0.1)]
    rate: f64,
    /// Seed of the fault decisions (same seed, same decisions).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fault kinds to draw from, comma-separated: reset, stall, truncate, slowdown, internal-error
    /// (the default), and corrupt-body (inverts one request-body byte; only when named).
    #[arg(long, value_delimiter = ',', default_values_t = FaultKind::ALL.map(|k| k.name().to_owned()))]
    kinds: Vec<String>,
    /// Stall of the `stall` fault, in milliseconds (at most 30000).
    #[arg(long, default_value_t = 2000)]
    stall_ms: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Stop accepting after this many connections.
    #[arg(long, default_value_t = 1_000_000)]
    max_connections: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let kinds: Result<Vec<FaultKind>, String> = args.kinds.iter().map(|k| k.parse()).collect();
    let kinds = match kinds {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = ProxyConfig::new(args.upstream)
        .with_faults(args.rate, args.seed)
        .with_kinds(&kinds)
        .with_stall(Duration::from_millis(args.stall_ms))
        .with_run_for(Duration::from_secs(args.seconds))
        .with_max_connections(args.max_connections);
    let proxy = match FaultProxy::start(config).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", proxy.endpoint());
    let counts = proxy.wait().await;
    println!("{counts}");
    ExitCode::SUCCESS
}
