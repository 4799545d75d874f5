//! The engine: refresh, plan and apply. It orchestrates configuration,
//! providers and the state store, and never prints: progress goes out as
//! [`Event`]s through [`Hooks`], results come back as data.
//!
//! Data flows one way: config → graph → refresh (observed) → diff → plan →
//! apply walk → state.

pub mod apply;
pub mod drain;
pub mod drift;
pub mod gate;
pub mod plan;
pub mod planfile;
pub mod refresh;
pub mod saved;
pub mod surgery;
pub mod world;

use crate::addr::InstanceAddr;
use crate::diag::Diag;
use crate::provider::{ProviderError, ProviderErrorKind};
use std::time::Duration;

/// Progress events for the UI.
#[derive(Debug, Clone)]
pub enum Event {
    Refreshing { rtype: String, count: usize },
    ActionStarted { addr: InstanceAddr, what: String },
    ActionFinished { addr: InstanceAddr, what: String, elapsed: Duration },
    ActionFailed { addr: InstanceAddr, what: String, error: String },
    Retrying { what: String, attempt: u32, error: String },
    Note(String),
}

/// Receives engine events; implemented by the CLI.
pub trait Hooks: Send + Sync {
    fn event(&self, event: Event);
}

/// Hooks that drop every event (tests, benchmarks).
pub struct NoHooks;

impl Hooks for NoHooks {
    fn event(&self, _event: Event) {}
}

/// How many times a transient provider error is retried, and the backoff.
const RETRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Runs a provider call, retrying transient errors with exponential backoff.
pub async fn with_retries<T, F, Fut>(mut call: F, hooks: &dyn Hooks, what: &str) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < RETRIES => {
                attempt += 1;
                hooks.event(Event::Retrying { what: what.to_string(), attempt, error: e.to_string() });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// A diagnostic for a failed provider call.
pub fn provider_error(what: &str, error: &ProviderError) -> Diag {
    Diag::error(format!("{what} failed: {error}")).with_detail(match error.kind() {
        ProviderErrorKind::Transient => "The service kept failing after retries; run the command again.",
        ProviderErrorKind::NotFound => "The object no longer exists; run plan again to see the current state.",
        ProviderErrorKind::Conflict => "The object changed or exists already; run plan again to see the current state.",
        ProviderErrorKind::Invalid | ProviderErrorKind::Other => "The service refused the request; fix the configuration and run again.",
    })
}
