//! What the process-per-measurement benches (`compare`, `http2`) share.
//! Each bench target is a crate of its own and includes this directory with
//! `#[path = "../common/mod.rs"] mod common;`.

pub(crate) mod echo;
pub(crate) mod machine;
pub(crate) mod os;
pub(crate) mod table;
