//! [`S3Factory`]: builds [`S3Driver`]s from a registry's `storage: s3:` parameters.

use std::sync::Arc;

use async_trait::async_trait;
use regstore_driver_api::{DriverFactory, Parameters, Result, StorageDriver};

use crate::config::S3Config;
use crate::driver::S3Driver;

/// Builds the S3 driver from its parameters (see [`S3Config::from_parameters`] for the
/// accepted keys). Register it under both `"s3"` and `"s3aws"`, as distribution does.
/// Construction validates every parameter but does not contact S3.
#[derive(Debug, Clone, Copy, Default)]
pub struct S3Factory;

#[async_trait]
impl DriverFactory for S3Factory {
    async fn create(&self, params: &Parameters) -> Result<Arc<dyn StorageDriver>> {
        let config = S3Config::from_parameters(params)?;
        Ok(Arc::new(S3Driver::new(config)?))
    }
}
