//! The himaplan command line and its providers. `main.rs` only parses
//! arguments and maps errors to exit codes; everything else is here.

pub mod cli;
pub mod prometheus;
pub mod providers;
pub mod state_s3;
