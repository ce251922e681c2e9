//! Regression tests for the outside security review (issue 13): one module per area, one test per
//! finding, each named `regression_<finding>_<clause>` after the finding and the spec clause it
//! breaks, over real HTTP against real SQLite (and PostgreSQL where instances share a database).
//! Each was first seen failing on the code before its fix.
mod accounts;
mod codes;
/// Spawns `tessera serve` and the admin CLI; one test uses PostgreSQL (CI tier).
#[cfg(feature = "ci-tier")]
mod keys;
mod logout;
mod oidc;
mod parsers;
mod serving;
mod throttle;
