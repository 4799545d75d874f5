//! himaplan's engine: configuration, dependency graph, plans, state and the
//! apply walk. It links no cloud SDK and never prints: the CLI renders the
//! events and results it returns.

pub mod addr;
pub mod advise;
pub mod builtin;
pub mod config;
pub mod diag;
pub mod engine;
pub mod files;
pub mod graph;
pub mod number;
pub mod plan;
pub mod provider;
pub mod reference;
pub mod state;
pub mod value;
pub mod value_map;
