//! Building drivers by name from configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Driver, Error, Parameters, Result, StorageDriver};

/// Builds one kind of backend from its parameters.
///
/// Backend crates export a factory; an application collects the ones it wants in a
/// [`Registry`]. Construction validates every parameter and reports the first bad one as
/// [`Error::InvalidParameter`].
#[async_trait]
pub trait DriverFactory: Send + Sync {
    /// Builds the backend.
    async fn create(&self, params: &Parameters) -> Result<Arc<dyn StorageDriver>>;
}

/// Wraps a driver in a middleware (CloudFront, redirect, rewrite, …) configured by `options`,
/// the `options:` map of one `middleware: storage:` entry.
#[async_trait]
pub trait MiddlewareFactory: Send + Sync {
    /// Builds the middleware around `inner`.
    async fn wrap(
        &self,
        inner: Arc<dyn StorageDriver>,
        options: &Parameters,
    ) -> Result<Arc<dyn StorageDriver>>;
}

/// One configured middleware: its registered name and options, in chain order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MiddlewareConfig {
    /// Registered name (`cloudfront`, `redirect`, `rewrite`).
    pub name: String,
    /// The middleware's options.
    #[serde(default)]
    pub options: Parameters,
    /// A disabled entry is skipped.
    #[serde(default)]
    pub disabled: bool,
}

/// Factories by backend name (`"filesystem"`, `"inmemory"`, `"s3"`, …).
///
/// Not a global: an application builds one from the backend crates it links, so a binary
/// carries only the backends it names.
#[derive(Default, Clone)]
pub struct Registry {
    factories: BTreeMap<String, Arc<dyn DriverFactory>>,
    middlewares: BTreeMap<String, Arc<dyn MiddlewareFactory>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("drivers", &self.factories.keys().collect::<Vec<_>>())
            .field("middlewares", &self.middlewares.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name`, replacing an earlier one of that name.
    pub fn register(&mut self, name: impl Into<String>, factory: Arc<dyn DriverFactory>) {
        self.factories.insert(name.into(), factory);
    }

    /// Builder form of [`register`](Self::register).
    pub fn with(mut self, name: impl Into<String>, factory: Arc<dyn DriverFactory>) -> Self {
        self.register(name, factory);
        self
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds the backend registered as `name`; [`Error::UnknownDriver`] if there is none.
    pub async fn create(&self, name: &str, params: &Parameters) -> Result<Driver> {
        let factory = self
            .factories
            .get(name)
            .ok_or_else(|| Error::UnknownDriver {
                name: name.to_owned(),
            })?;
        Ok(Driver::new(factory.create(params).await?))
    }

    /// Registers a middleware factory under `name`.
    pub fn register_middleware(
        &mut self,
        name: impl Into<String>,
        factory: Arc<dyn MiddlewareFactory>,
    ) {
        self.middlewares.insert(name.into(), factory);
    }

    /// Builds the backend `name`, then wraps it in each enabled middleware of `chain` in order
    /// (the first entry wraps the backend, the last is outermost).
    pub async fn create_with_middlewares(
        &self,
        name: &str,
        params: &Parameters,
        chain: &[MiddlewareConfig],
    ) -> Result<Driver> {
        let mut driver = self.create(name, params).await?.inner().clone();
        for m in chain.iter().filter(|m| !m.disabled) {
            let factory = self
                .middlewares
                .get(&m.name)
                .ok_or_else(|| Error::UnknownDriver {
                    name: format!("middleware {}", m.name),
                })?;
            driver = factory.wrap(driver, &m.options).await?;
        }
        Ok(Driver::new(driver))
    }
}
