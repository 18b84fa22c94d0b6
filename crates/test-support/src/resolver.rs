//! A DNS resolver for virtual-hosted addressing against loopback servers.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use hyper::client::connect::dns::Name;
use hyper::client::HttpConnector;

/// Resolves `localhost` and `*.localhost` to 127.0.0.1 (glibc does not resolve subdomains of
/// `localhost`), so virtual-hosted requests (`bucket.localhost:PORT`) and public-looking
/// redirect hosts reach a local server; any other name is an error, so a test cannot reach the
/// network by mistake.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalhostResolver;

impl tower_service::Service<Name> for LocalhostResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = futures::future::Ready<std::io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let n = name.as_str();
        futures::future::ready(if n == "localhost" || n.ends_with(".localhost") {
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))].into_iter())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("test resolver: unknown host {n}"),
            ))
        })
    }
}

/// A plain-HTTP hyper connector resolving with [`LocalhostResolver`].
pub fn localhost_connector() -> HttpConnector<LocalhostResolver> {
    HttpConnector::new_with_resolver(LocalhostResolver)
}
