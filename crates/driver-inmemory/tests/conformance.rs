//! The shared conformance suite against a fresh in-memory store per case.

use std::sync::Arc;

use regstore_driver_api::{Driver, StorageDriver};
use regstore_driver_conformance::{Fixture, Suite};
use regstore_driver_inmemory::InMemoryDriver;

fn suite() -> Suite {
    Suite::new(|| async {
        let backend: Arc<dyn StorageDriver> = Arc::new(InMemoryDriver::new());
        Ok(Fixture::new(Driver::new(backend)))
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
    options.crash = CrashResume::Exact;
    let runner = ModelRunner::from_suite(suite(), options);
    run_blocking(&runner, "inmemory", std::time::Duration::from_secs(15));
}
