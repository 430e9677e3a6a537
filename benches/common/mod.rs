//! What the process-per-measurement benches (`compare`, `http2`, `server`)
//! share. Each bench target is a crate of its own and includes this
//! directory with `#[path = "../common/mod.rs"] mod common;`. `os_limits.rs`
//! is not listed here: the benches that need it include it on its own.

pub(crate) mod echo;
pub(crate) mod machine;
pub(crate) mod os;
pub(crate) mod table;
