//! The HTTP client under the dispatcher: the connector (proxies, TLS stack, CA bundle: [`crate::net`]), the keep-alive pool
//! ([`crate::transport`]) and the `User-Agent` every request carries.

use std::time::Duration;

use crate::config::S3Config;
use crate::net::Connector;
use crate::transport::Transport;

/// Builds the driver's connector: proxies and CA bundle from the environment, TLS certificates
/// verified unless `skip_verify`; opening a TCP connection may take at most `connect_timeout`.
pub(crate) fn connector(skip_verify: bool, connect_timeout: Duration) -> Result<Connector, String> {
    if skip_verify {
        // Said once per driver, at start-up: a config that turns verification off should be
        // visible in the logs, not only in the file.
        tracing::warn!(
            "s3aws: skipverify is set: TLS certificates and host names are not verified"
        );
    }
    // Small requests go out in one or two writes and wait for the answer: Nagle's algorithm
    // would only hold a request's tail back for the server's delayed ACK (nodelay).
    Connector::from_env(connect_timeout, skip_verify, true)
}

/// The driver's HTTP transport over `connector`, with the configured keep-alive pool.
pub(crate) fn http_client<C>(config: &S3Config, connector: C) -> Transport<C>
where
    C: hyper::client::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut builder = hyper::Client::builder();
    builder.pool_max_idle_per_host(config.max_idle_conns_per_host);
    builder.pool_idle_timeout(if config.idle_conn_timeout.is_zero() {
        None
    } else {
        Some(config.idle_conn_timeout)
    });
    Transport::new(&builder, connector)
}

/// `regstore/<version> rusoto/0.48` plus the configured `useragent`, if any.
pub(crate) fn user_agent(config: &S3Config) -> String {
    let base = format!("regstore/{} rusoto/0.48", env!("CARGO_PKG_VERSION"));
    match &config.user_agent {
        Some(extra) => format!("{base} {extra}"),
        None => base,
    }
}
