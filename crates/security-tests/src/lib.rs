//! Cross-crate security tests of regstore; the tests are in `tests/`, this library is empty.
//!
//! They live in their own package because they need the S3 driver and the CloudFront
//! middleware together, and neither of those crates should depend on the other.
