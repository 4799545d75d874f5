//! The `pgbouncer` provider's client, PgBouncer's admin console: the
//! virtual `pgbouncer` database reached with a user listed in `admin_users`. It speaks the simple query protocol
//! only, so every command here goes through `simple_query`.
//!
//! Owns the connection and the typed views of `SHOW CONFIG` and
//! `SHOW DATABASES`, plus `RELOAD`, `SET`, `PAUSE` and `RESUME`. Must not read or write the
//! ini file, and must never put the admin URL (it holds a password) into
//! an error message.

use himaplan_engine::provider::ProviderError;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long connecting to the console may take before it counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of `SHOW CONFIG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRow {
    pub value: String,
    /// False for settings PgBouncer applies only at start-up.
    pub changeable: bool,
}

/// One row of `SHOW DATABASES`: column name → text value.
pub type DatabaseRow = BTreeMap<String, String>;

/// An open admin-console session.
pub struct Console {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Console {
    fn drop(&mut self) {
        // The connection task ends when the client is dropped; aborting it
        // as well makes sure no socket outlives the call that opened it.
        self.task.abort();
    }
}

impl Console {
    /// Connects to the console at `url` (a `postgres://` URL naming the
    /// `pgbouncer` database).
    pub async fn connect(url: &str) -> Result<Console, ProviderError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| {
            // tokio-postgres's message may quote the URL, password included,
            // so the parse error is not kept as the source either.
            ProviderError::invalid("pgbouncer: admin_url is not a valid postgres:// URL")
        })?;
        if config.get_dbname() != Some("pgbouncer") {
            return Err(ProviderError::invalid("pgbouncer: admin_url must name the admin console's database \"pgbouncer\""));
        }
        let connecting = config.connect(NoTls);
        let (client, connection) = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Err(_) => {
                return Err(ProviderError::transient(format!(
                    "pgbouncer: the admin console did not answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(classify("connecting to the admin console", e)),
            Ok(Ok(pair)) => pair,
        };
        let task = tokio::spawn(async move {
            // Errors surface on the client's next call; nothing to do here.
            let _ = connection.await;
        });
        Ok(Console { client, task })
    }

    /// `SHOW CONFIG`: setting name → value and whether RELOAD can change it.
    pub async fn show_config(&self) -> Result<BTreeMap<String, ConfigRow>, ProviderError> {
        let rows = self.rows("SHOW CONFIG").await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let key = row.get("key")?.to_ascii_lowercase();
                let value = row.get("value").cloned().unwrap_or_default();
                let changeable = row.get("changeable").map(|c| c != "no").unwrap_or(true);
                Some((key, ConfigRow { value, changeable }))
            })
            .collect())
    }

    /// `SHOW DATABASES`: database name → its row.
    pub async fn show_databases(&self) -> Result<BTreeMap<String, DatabaseRow>, ProviderError> {
        let rows = self.rows("SHOW DATABASES").await?;
        Ok(rows.into_iter().filter_map(|row| Some((row.get("name")?.clone(), row))).collect())
    }

    /// `RELOAD`: PgBouncer re-reads its ini file.
    pub async fn reload(&self) -> Result<(), ProviderError> {
        self.rows("RELOAD").await.map(drop)
    }

    /// `PAUSE db`: waits until the database's server connections are
    /// released, then holds its clients; fails after `timeout`, RESUMEd
    /// again through a new session (the waiting one is closed), so that a
    /// failed drain leaves nothing paused.
    pub async fn pause(&self, url: &str, db: &str, timeout: Duration) -> Result<(), ProviderError> {
        let db = database_name(db)?;
        match tokio::time::timeout(timeout, self.rows(&format!("PAUSE {db}"))).await {
            Ok(result) => result.map(drop),
            Err(_) => {
                Console::connect(url).await?.resume(db).await?;
                Err(ProviderError::other(format!(
                    "pgbouncer: PAUSE {db} did not finish within {} s (server connections still busy); it was RESUMEd",
                    timeout.as_secs()
                )))
            }
        }
    }

    /// `RESUME db`; a database that is not paused is left as it is.
    pub async fn resume(&self, db: &str) -> Result<(), ProviderError> {
        let db = database_name(db)?;
        match self.rows(&format!("RESUME {db}")).await {
            Err(e) if e.message().contains("not paused") => Ok(()),
            other => other.map(drop),
        }
    }

    /// `SET key = value`: changes a setting live, without touching the file.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), ProviderError> {
        if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ProviderError::invalid(format!("pgbouncer: {key:?} is not a setting name")));
        }
        let quoted = value.replace('\'', "''");
        self.rows(&format!("SET {key} = '{quoted}'")).await.map(drop)
    }

    async fn rows(&self, command: &str) -> Result<Vec<BTreeMap<String, String>>, ProviderError> {
        let messages = self.client.simple_query(command).await.map_err(|e| classify(command, e))?;
        let mut rows = Vec::new();
        for message in messages {
            if let SimpleQueryMessage::Row(row) = message {
                let mut map = BTreeMap::new();
                for (i, column) in row.columns().iter().enumerate() {
                    map.insert(column.name().to_string(), row.get(i).unwrap_or_default().to_string());
                }
                rows.push(map);
            }
        }
        Ok(rows)
    }
}

/// A database name as a console command word (validated like the ini's).
fn database_name(db: &str) -> Result<&str, ProviderError> {
    if !db.is_empty() && db.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')) {
        Ok(db)
    } else {
        Err(ProviderError::invalid(format!("pgbouncer: {db:?} cannot be paused by name")))
    }
}

/// Maps a client error, keeping it as the source: a refusal by the server
/// (bad password, unknown command, a refused value) is invalid; a broken or
/// refused connection is transient.
fn classify(doing: &str, e: tokio_postgres::Error) -> ProviderError {
    let error = match e.as_db_error() {
        Some(db) => ProviderError::invalid(format!("pgbouncer: {doing}: {}", db.message())),
        None if e.is_closed() => ProviderError::transient(format!("pgbouncer: {doing}: the connection closed")),
        None => {
            let source = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
            ProviderError::transient(format!("pgbouncer: {doing}: {e} {source}").trim_end().to_string())
        }
    };
    error.with_source(e)
}
