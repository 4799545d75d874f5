//! Connecting to EC2 and S3 and classifying their failures.
//!
//! Owns the SDK configuration (explicit rustls+ring HTTP client, region
//! resolution, retries with backoff, timeouts), the S3 client's path-style
//! addressing, and the mapping from SDK errors to [`ProviderError`]. The
//! endpoint and credentials come from the AWS ecosystem's defaults
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL_S3`, the
//! default credential chain). Must not issue EC2 or S3 calls itself and must
//! not resolve the region through the instance metadata service: region
//! comes from configuration, environment or profile, else `us-east-1`.

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::ProviderError;
use himaplan_engine::value::Value;
use std::time::Duration;

/// Region used when neither configuration, environment nor profile names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Attempts per request, first one included (throttling, 5xx, timeouts, I/O).
pub const MAX_ATTEMPTS: u32 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds an EC2 client from the `provider "aws"` block (`Null` when absent).
pub async fn connect(config: &Value) -> Result<aws_sdk_ec2::Client, ProviderError> {
    Ok(aws_sdk_ec2::Client::new(&load(config).await?))
}

/// Loads the shared SDK configuration from the `provider "aws"` block.
pub async fn load(config: &Value) -> Result<SdkConfig, ProviderError> {
    Ok(sdk_config(configured_region(config)?).await)
}

/// Builds an S3 client for `region` (`None`: environment, profile, else
/// `us-east-1`), as the S3 state backend needs one without a provider block.
pub async fn connect_s3(region: Option<String>) -> aws_sdk_s3::Client {
    s3_client(&sdk_config(region).await)
}

/// An S3 client over a loaded configuration. Path-style addressing
/// (`http://host/bucket/key`) because emulators such as moto answer only
/// on one host name; AWS still accepts it.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The SDK configuration every client of this provider is built from.
pub async fn sdk_config(region: Option<String>) -> SdkConfig {
    let region = RegionProviderChain::first_try(region.map(Region::new))
        .or_else(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .or_else(aws_config::profile::ProfileFileRegionProvider::new())
        .or_else(Region::new(DEFAULT_REGION));
    // With default features off the SDK has no HTTP client of its own; this
    // one speaks plain HTTP (moto) and HTTPS through rustls with ring.
    let http = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .http_client(http)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).build())
        .load()
        .await
}

/// The `region` of the provider block, if set.
pub fn configured_region(config: &Value) -> Result<Option<String>, ProviderError> {
    match config.unmarked() {
        Value::Null => Ok(None),
        Value::Map(map) => match map.get("region").map(Value::unmarked) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(r)) if r.is_empty() => Ok(None),
            Some(Value::String(r)) => Ok(Some(r.clone())),
            Some(other) => Err(ProviderError::invalid(format!("provider \"aws\": region must be a string, not {}", other.type_name()))),
        },
        other => Err(ProviderError::invalid(format!("provider \"aws\": expected an object, not {}", other.type_name()))),
    }
}

/// How a request failed, as the SDK reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request could not be built (a bug or bad input): not retried.
    Construction,
    /// No response in time.
    Timeout,
    /// Connecting or sending failed (refused, reset, DNS, TLS).
    Dispatch,
    /// A response arrived but could not be read.
    Response,
    /// The service answered with an error.
    Service,
}

/// Service error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequestsException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
];

/// Service error codes that mean "the object does not exist" (EC2, S3).
const NOT_FOUND_CODES: &[&str] =
    &["InvalidInstanceID.NotFound", "NoSuchBucket", "NoSuchKey", "NoSuchLifecycleConfiguration", "NoSuchTagSet", "NotFound"];

/// Service error codes that mean "the object exists already or changed
/// under us" (S3 bucket names are global; a conflicting operation is in
/// progress).
const CONFLICT_CODES: &[&str] = &["BucketAlreadyExists", "BucketAlreadyOwnedByYou", "OperationAborted", "ConditionalRequestConflict"];

/// Classifies a failure from its parts (pure, so it can be tested without a
/// server). `detail` describes transport failures.
pub fn classify(kind: FailureKind, code: Option<&str>, message: Option<&str>, status: Option<u16>, detail: &str) -> ProviderError {
    match kind {
        FailureKind::Timeout | FailureKind::Dispatch | FailureKind::Response => ProviderError::transient(detail),
        FailureKind::Construction => ProviderError::other(detail),
        FailureKind::Service => {
            let text = match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => detail.to_string(),
            };
            if code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) || status.is_some_and(|s| s >= 500) {
                ProviderError::transient(text)
            } else if code.is_some_and(|c| NOT_FOUND_CODES.contains(&c)) {
                ProviderError::not_found(text)
            } else if code.is_some_and(|c| CONFLICT_CODES.contains(&c)) || status.is_some_and(|s| s == 409 || s == 412) {
                ProviderError::conflict(text)
            } else if status.is_some_and(|s| (400..500).contains(&s)) {
                ProviderError::invalid(text)
            } else {
                ProviderError::other(text)
            }
        }
    }
}

/// The error for a planned or prior value that lacks an attribute the call needs.
pub fn missing(addr: &InstanceAddr, attr: &str) -> ProviderError {
    ProviderError::invalid(format!("{addr}: attribute {attr:?} is missing"))
}

/// A request the SDK refused to build (a missing required field).
pub fn invalid_request(e: aws_sdk_s3::error::BuildError) -> ProviderError {
    ProviderError::invalid(e.to_string()).with_source(e)
}

/// Maps an SDK error of EC2 operation `op` to a [`ProviderError`].
pub fn sdk_error<E>(op: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    service_error("EC2", op, err, false)
}

/// Maps an SDK error of S3 operation `op` to a [`ProviderError`]. A bare
/// 404 (HEAD requests carry no error body) is `NotFound`.
pub fn s3_error<E>(op: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    service_error("S3", op, err, true)
}

/// The classified error, with the SDK error as its source; `bare_404_gone`
/// makes a 404 without an error code `NotFound`.
fn service_error<E>(service: &str, op: &str, err: SdkError<E, HttpResponse>, bare_404_gone: bool) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &err {
        SdkError::ConstructionFailure(_) => FailureKind::Construction,
        SdkError::TimeoutError(_) => FailureKind::Timeout,
        SdkError::DispatchFailure(_) => FailureKind::Dispatch,
        SdkError::ResponseError(_) => FailureKind::Response,
        SdkError::ServiceError(_) => FailureKind::Service,
        // SdkError is non-exhaustive; an unknown kind is not worth retrying.
        _ => FailureKind::Construction,
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    let detail = format!("{service} {op}: {}", DisplayErrorContext(&err));
    let mut error = classify(kind, err.code(), err.message(), status, &detail);
    if bare_404_gone && err.code().is_none() && status == Some(404) && !error.is_transient() {
        error = ProviderError::not_found(error.message());
    }
    error.with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use himaplan_engine::provider::ProviderErrorKind;

    #[test]
    fn throttling_and_server_errors_are_transient() {
        let e = classify(FailureKind::Service, Some("RequestLimitExceeded"), Some("slow down"), Some(503), "");
        assert!(e.is_transient());
        let e = classify(FailureKind::Service, Some("Throttling"), None, Some(400), "");
        assert!(e.is_transient());
        let e = classify(FailureKind::Service, Some("Whatever"), Some("boom"), Some(500), "");
        assert!(e.is_transient());
        for kind in [FailureKind::Timeout, FailureKind::Dispatch, FailureKind::Response] {
            assert!(classify(kind, None, None, None, "connection reset").is_transient());
        }
    }

    #[test]
    fn missing_instance_is_not_found() {
        let e = classify(FailureKind::Service, Some("InvalidInstanceID.NotFound"), Some("gone"), Some(400), "");
        assert_eq!(e.kind(), ProviderErrorKind::NotFound);
    }

    #[test]
    fn refused_requests_keep_the_service_code_and_message() {
        let e = classify(FailureKind::Service, Some("InvalidAMIID.NotFound"), Some("The image id '[ami-x]' does not exist"), Some(400), "");
        assert_eq!(e.kind(), ProviderErrorKind::Invalid, "{e:?}");
        assert_eq!(e.message(), "InvalidAMIID.NotFound: The image id '[ami-x]' does not exist");
        assert!(!classify(FailureKind::Construction, None, None, None, "bad").is_transient());
    }

    #[test]
    fn region_comes_from_the_provider_block() {
        let config = Value::Map([("region".to_string(), Value::from("eu-west-1"))].into());
        assert_eq!(configured_region(&config).ok().flatten().as_deref(), Some("eu-west-1"));
        assert_eq!(configured_region(&Value::Null).ok().flatten(), None);
        assert!(configured_region(&Value::Map([("region".to_string(), Value::from(3i64))].into())).is_err());
    }
}
