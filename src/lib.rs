//! wsstream
#![allow(missing_docs)]
pub mod proto;
