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

/// Generated writer sequences against the model of the writer contract (see
/// `regstore_driver_conformance::writer_model`): 5 MiB and 10 MiB part-size edges.
#[test]
fn writer_model() {
    use regstore_driver_conformance::writer_model::{
        run_blocking, CrashResume, ModelOptions, ModelRunner,
    };
    let mut options = ModelOptions::new(10 * 1024 * 1024);
    options.crash = CrashResume::Prefix;
    let runner = ModelRunner::from_suite(suite(), options);
    run_blocking(&runner, "filesystem", std::time::Duration::from_secs(15));
}
