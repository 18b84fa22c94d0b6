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
