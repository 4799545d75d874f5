//! Providers: the only code that links cloud SDKs. Each folder has the same
//! file set; adding one is a folder and one line in [`registry`].

pub mod aws;
pub mod docker;
pub mod kubernetes;
pub mod nginx;
pub mod pgbouncer;
pub mod shared;

use himaplan_engine::provider::Registry;
use std::sync::Arc;

/// Every provider this build offers.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(Arc::new(himaplan_engine::builtin::BuiltinProvider));
    registry.register(Arc::new(aws::AwsProvider::new()));
    registry.register(Arc::new(pgbouncer::PgbouncerProvider::new()));
    registry.register(Arc::new(nginx::NginxProvider::new()));
    registry.register(Arc::new(docker::DockerProvider::new()));
    registry.register(Arc::new(kubernetes::KubernetesProvider::new()));
    registry
}
