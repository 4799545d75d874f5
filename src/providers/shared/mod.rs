//! Helpers every provider folder shares: [`ServedTypes`] (which resource
//! types a provider serves, and the error for one it does not) and
//! [`files`] (configuration files a daemon reads and himaplan rewrites).
//!
//! Owns no connection and no resource logic, and must not depend on any
//! one provider: what lives here is used by more than one of them.

pub mod files;

use himaplan_engine::provider::ProviderError;

/// The resource types one provider serves, for checking the type of each
/// call the engine makes.
#[derive(Debug, Clone, Copy)]
pub struct ServedTypes {
    /// The provider's name, as in `provider "NAME"`.
    pub provider: &'static str,
    pub types: &'static [&'static str],
}

impl ServedTypes {
    /// `Ok` when `rtype` is one of the served types.
    pub fn check(&self, rtype: &str) -> Result<(), ProviderError> {
        if self.types.contains(&rtype) { Ok(()) } else { Err(self.unknown(rtype)) }
    }

    /// The error for a call with a type this provider does not serve (the
    /// engine never makes one, so it is not the user's to fix).
    pub fn unknown(&self, rtype: &str) -> ProviderError {
        ProviderError::other(format!("the {} provider has no resource type {rtype:?}", self.provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_are_named_with_the_provider() {
        let served = ServedTypes { provider: "nginx", types: &["nginx_upstream"] };
        assert!(served.check("nginx_upstream").is_ok());
        let err = served.check("nginx_server").expect_err("not served");
        assert_eq!(err.to_string(), "the nginx provider has no resource type \"nginx_server\"");
    }
}
