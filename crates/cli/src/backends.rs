//! The backends and middlewares this binary links, and building a driver from a
//! [`StorageConfig`] with errors that name the configuration key at fault.

use std::sync::Arc;

use regstore_driver_api::{
    async_trait, Driver, DriverFactory, Error, Parameters, Registry, Result, StorageDriver,
};

use crate::config::StorageConfig;
use crate::error::{CliError, CliResult};

/// The registry of every backend and middleware compiled into `regstore`.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("inmemory", Arc::new(InMemory));
    r.register(
        "filesystem",
        Arc::new(regstore_driver_filesystem::FilesystemFactory),
    );
    r.register("s3", Arc::new(regstore_driver_s3::S3Factory));
    r.register("s3aws", Arc::new(regstore_driver_s3::S3Factory));
    regstore_middleware_cloudfront::register(&mut r);
    r
}

/// The in-memory backend, for `check`/`bench` dry runs and tests: data lives only as long as
/// one command.
struct InMemory;

#[async_trait]
impl DriverFactory for InMemory {
    async fn create(&self, _params: &Parameters) -> Result<Arc<dyn StorageDriver>> {
        Ok(Arc::new(regstore_driver_inmemory::InMemoryDriver::new()))
    }
}

/// Hands an already built driver to [`Registry::create_with_middlewares`], so the backend is
/// built (and its errors attributed) separately from the middleware chain.
struct Prebuilt(Arc<dyn StorageDriver>);

#[async_trait]
impl DriverFactory for Prebuilt {
    async fn create(&self, _params: &Parameters) -> Result<Arc<dyn StorageDriver>> {
        Ok(self.0.clone())
    }
}

/// Name under which [`Prebuilt`] is registered; not a valid YAML backend key by accident.
const PREBUILT: &str = "\u{0}prebuilt";

/// Builds the configured backend, without middlewares.
pub async fn open_backend(config: &StorageConfig) -> CliResult<Driver> {
    let registry = registry();
    registry
        .create(&config.backend, &config.params)
        .await
        .map_err(|e| backend_error(config, &registry, e))
}

/// Whether `backend` names the S3 driver (distribution registers it as `s3` and `s3aws`).
pub fn is_s3(backend: &str) -> bool {
    backend.eq_ignore_ascii_case("s3") || backend.eq_ignore_ascii_case("s3aws")
}

/// The concrete S3 driver for S3-only operations (multipart uploads), or `None` when the
/// configured backend is not S3.
pub fn open_s3(config: &StorageConfig) -> CliResult<Option<regstore_driver_s3::S3Driver>> {
    if !is_s3(&config.backend) {
        return Ok(None);
    }
    let built = regstore_driver_s3::S3Config::from_parameters(&config.params)
        .and_then(regstore_driver_s3::S3Driver::new);
    built
        .map(Some)
        .map_err(|e| backend_error(config, &registry(), e))
}

/// Builds the configured backend wrapped in its enabled middlewares, in order.
pub async fn open(config: &StorageConfig) -> CliResult<Driver> {
    let backend = open_backend(config).await?;
    if config.middlewares.iter().all(|m| m.disabled) {
        return Ok(backend);
    }
    let mut registry = registry();
    registry.register(PREBUILT, Arc::new(Prebuilt(backend.inner().clone())));
    registry
        .create_with_middlewares(PREBUILT, &Parameters::new(), &config.middlewares)
        .await
        .map_err(|e| middleware_error(config, e))
}

/// Turns a construction error of the backend into one naming `storage.<backend>[.<param>]`.
fn backend_error(config: &StorageConfig, registry: &Registry, e: Error) -> CliError {
    let section = format!("storage.{}", config.backend);
    match e {
        Error::UnknownDriver { name } => CliError::Config {
            origin: config.origin.clone(),
            key: section,
            message: format!(
                "unknown backend {name:?} (this build knows: {})",
                registry
                    .names()
                    .filter(|n| *n != PREBUILT)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Error::InvalidParameter {
            parameter, message, ..
        } => CliError::Config {
            origin: config.origin.clone(),
            key: format!("{section}.{parameter}"),
            message,
        },
        other if other.is_invalid_input() => CliError::Config {
            origin: config.origin.clone(),
            key: section,
            message: other.to_string(),
        },
        other => CliError::Driver(other),
    }
}

/// Turns a construction error of the middleware chain into one naming the entry.
fn middleware_error(config: &StorageConfig, e: Error) -> CliError {
    let index_of = |name: &str| {
        config
            .middlewares
            .iter()
            .position(|m| !m.disabled && m.name == name)
            .map(|i| format!("middleware.storage[{i}]"))
            .unwrap_or_else(|| "middleware.storage".into())
    };
    match e {
        Error::UnknownDriver { name } => {
            let mw = name.strip_prefix("middleware ").unwrap_or(&name).to_owned();
            CliError::Config {
                origin: config.origin.clone(),
                key: format!("{}.name", index_of(&mw)),
                message: format!("unknown storage middleware {mw:?}"),
            }
        }
        Error::InvalidParameter {
            driver,
            parameter,
            message,
        } => CliError::Config {
            origin: config.origin.clone(),
            key: format!("{}.options.{parameter}", index_of(&driver)),
            message,
        },
        other => CliError::Driver(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_backend_names_the_section() {
        let c = StorageConfig::from_yaml("storage:\n  floppy: {}\n", "c.yml").unwrap();
        let e = open(&c).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("storage.floppy") && msg.contains("unknown backend"),
            "{msg}"
        );
        assert_eq!(e.exit_code(), crate::error::EXIT_INVALID);
    }

    #[tokio::test]
    async fn unknown_middleware_names_the_entry() {
        let c = StorageConfig::from_yaml(
            "storage: {inmemory: }\nmiddleware:\n  storage:\n    - name: nope\n",
            "c.yml",
        )
        .unwrap();
        let msg = open(&c).await.unwrap_err().to_string();
        assert!(msg.contains("middleware.storage[0].name"), "{msg}");
    }
}
