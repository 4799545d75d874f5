//! Connecting to the Docker daemon and classifying its failures.
//!
//! Owns where the daemon is (`provider "docker" { host }`, else
//! `DOCKER_HOST`, else the standard socket), the API version negotiation
//! (the Debian daemon speaks 1.41, older than bollard's default; asked of
//! `/_ping` as the docker CLI does, else of `/version`) and the
//! mapping from bollard errors to [`ProviderError`]. Must not issue
//! container calls itself.

use bollard::Docker;
use bollard::errors::Error as DockerError;
use himaplan_engine::provider::ProviderError;
use himaplan_engine::value::Value;
use std::time::Duration;

/// The daemon's address when neither configuration nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Per-request timeout; a stop waits up to the container's stop timeout
/// (10 s by default) inside one request, so this is generous.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The daemon address: the provider block's `host`, else `env_host`
/// (`DOCKER_HOST`), else [`DEFAULT_HOST`].
pub fn resolve_host(config: &Value, env_host: Option<String>) -> Result<String, ProviderError> {
    let configured = match config.unmarked() {
        Value::Null => None,
        Value::Map(map) => match map.get("host").map(Value::unmarked) {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) if h.is_empty() => None,
            Some(Value::String(h)) => Some(h.clone()),
            Some(other) => {
                return Err(ProviderError::invalid(format!("provider \"docker\": host must be a string, not {}", other.type_name())));
            }
        },
        other => {
            return Err(ProviderError::invalid(format!("provider \"docker\": expected an object, not {}", other.type_name())));
        }
    };
    Ok(configured.or(env_host.filter(|h| !h.is_empty())).unwrap_or_else(|| DEFAULT_HOST.to_string()))
}

/// Connects to the daemon and negotiates the API version. An unreachable
/// daemon is a permanent error naming the host and what to do.
pub async fn connect(config: &Value) -> Result<Docker, ProviderError> {
    let host = resolve_host(config, std::env::var("DOCKER_HOST").ok())?;
    let unreachable = |why: DockerError| {
        ProviderError::other(format!(
            "cannot reach the Docker daemon at {host}: {why}: is dockerd running? set DOCKER_HOST or provider \"docker\" {{ host }}"
        ))
        .with_source(why)
    };
    // Without negotiation bollard speaks its own (newer) default version,
    // which an older daemon refuses. On a Unix socket the daemon's version
    // comes from `/_ping`, as the docker CLI asks it; elsewhere, or when
    // that answer names none, from bollard's `/version`.
    if let Some(path) = host.strip_prefix("unix://")
        && let Ok(Ok(Some(server))) = tokio::time::timeout(PING_TIMEOUT, ping_api_version(path)).await
    {
        let newest = bollard::API_DEFAULT_VERSION;
        let version = if server < *newest {
            server
        } else {
            bollard::ClientVersion { major_version: newest.major_version, minor_version: newest.minor_version }
        };
        let docker = Docker::connect_with_unix(&host, REQUEST_TIMEOUT.as_secs(), &version).map_err(unreachable)?;
        return Ok(docker);
    }
    let docker = Docker::connect_with_host(&host).map_err(unreachable)?.with_timeout(REQUEST_TIMEOUT);
    docker.negotiate_version().await.map_err(unreachable)
}

/// How long the `/_ping` negotiation may take before `/version` is tried.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon's API version from the `Api-Version` header of `GET /_ping`
/// on the Unix socket at `path`. One cheap round trip: `/version`
/// (bollard's negotiation) makes the daemon gather every component's
/// version, about 14 ms against 0.6 ms for `/_ping` here (BENCHMARKS.md).
async fn ping_api_version(path: &str) -> std::io::Result<Option<bollard::ClientVersion>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::UnixStream::connect(path).await?;
    socket.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").await?;
    // The answer's head only, bounded.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(api_version_header(&String::from_utf8_lossy(&head)))
}

/// `1.41` from a response head holding `Api-Version: 1.41` (any case), if
/// it is a `200` answer.
fn api_version_header(head: &str) -> Option<bollard::ClientVersion> {
    let mut lines = head.split("\r\n");
    lines.next().filter(|status| status.split(' ').nth(1) == Some("200"))?;
    let value =
        lines.find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("api-version")).map(|(_, v)| v.trim()))?;
    let (major, minor) = value.split_once('.')?;
    Some(bollard::ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

/// Maps a bollard error of operation `op` to a [`ProviderError`] carrying
/// it as the source: a daemon answer is classified by its status, transport
/// failures are transient, the rest permanent with the daemon's message.
pub fn docker_error(op: &str, err: DockerError) -> ProviderError {
    let error = match &err {
        DockerError::DockerResponseServerError { status_code, message } => classify_status(op, *status_code, message),
        DockerError::RequestTimeoutError
        | DockerError::IOError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::HyperLegacyError { .. }
        | DockerError::SocketNotFoundError(_) => ProviderError::transient(format!("Docker {op}: {err}")),
        other => ProviderError::other(format!("Docker {op}: {other}")),
    };
    error.with_source(err)
}

/// Classifies a daemon answer by status (pure, testable without a daemon):
/// 404 is `NotFound`, 409 (a name in use, a container in the wrong state)
/// `Conflict`, other 4xx `Invalid`, 5xx transient.
pub fn classify_status(op: &str, status: u16, message: &str) -> ProviderError {
    let text = format!("Docker {op}: {message}");
    match status {
        404 => ProviderError::not_found(text),
        409 => ProviderError::conflict(text),
        s if s >= 500 => ProviderError::transient(text),
        400..=499 => ProviderError::invalid(text),
        _ => ProviderError::other(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use himaplan_engine::provider::ProviderErrorKind;

    #[test]
    fn host_comes_from_block_then_environment_then_default() {
        let block = Value::Map([("host".to_string(), Value::from("unix:///tmp/d.sock"))].into());
        let env = Some("tcp://127.0.0.1:2375".to_string());
        assert_eq!(resolve_host(&block, env.clone()).ok().as_deref(), Some("unix:///tmp/d.sock"));
        assert_eq!(resolve_host(&Value::Null, env).ok().as_deref(), Some("tcp://127.0.0.1:2375"));
        assert_eq!(resolve_host(&Value::Null, Some(String::new())).ok().as_deref(), Some(DEFAULT_HOST));
        assert!(resolve_host(&Value::Map([("host".to_string(), Value::from(1.0))].into()), None).is_err());
    }

    #[test]
    fn the_api_version_comes_from_a_ping_answers_header() {
        let head = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\n\r\n";
        let v = api_version_header(head).expect("a version");
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(api_version_header("HTTP/1.1 200 OK\r\napi-version:1.44\r\n\r\n").is_some());
        assert!(api_version_header("HTTP/1.1 500 Internal Server Error\r\nApi-Version: 1.41\r\n\r\n").is_none());
        assert!(api_version_header("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n").is_none());
        assert!(api_version_header("HTTP/1.1 200 OK\r\nApi-Version: one\r\n\r\n").is_none());
    }

    #[test]
    fn statuses_map_to_not_found_transient_and_permanent() {
        assert_eq!(classify_status("inspect", 404, "no such container").kind(), ProviderErrorKind::NotFound);
        assert!(classify_status("create", 500, "boom").is_transient());
        let e = classify_status("create", 409, "name in use");
        assert_eq!(e.kind(), ProviderErrorKind::Conflict, "{e:?}");
        assert_eq!(e.message(), "Docker create: name in use");
        assert_eq!(classify_status("create", 400, "bad parameter").kind(), ProviderErrorKind::Invalid);
    }
}
