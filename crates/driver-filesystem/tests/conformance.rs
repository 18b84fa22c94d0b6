//! The shared conformance suite against a fresh temporary root directory per case.

use std::sync::Arc;

use regstore_driver_api::{Driver, Error, StorageDriver};
use regstore_driver_conformance::{Fixture, Suite};
use regstore_driver_filesystem::FilesystemDriver;

fn suite() -> Suite {
    Suite::new(|| async {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::backend("filesystem", None, format!("temp dir: {e}")))?;
        let backend: Arc<dyn StorageDriver> = Arc::new(FilesystemDriver::new(dir.path()));
        // The temporary directory is removed when the fixture's teardown drops it.
        Ok(Fixture::new(Driver::new(backend)).keep_alive(dir))
    })
}

regstore_driver_conformance::conformance_tests!(suite);
