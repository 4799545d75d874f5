//! The `nginx` provider's client: driving the running nginx with
//! `nginx -t`, `nginx -s reload`, and waiting until the worker processes
//! that served the old configuration are gone. nginx has no API, so its
//! binary, its master's pid and `/proc` are the connection; failures are
//! classified here (a reload whose old workers linger is transient).
//!
//! Owns process spawning and `/proc` inspection. Must not write
//! configuration files, and must run nginx with the same `-p`/`-c` as the
//! daemon (without `-p`, relative paths resolve against the compiled-in
//! prefix, not the running daemon's).

use himaplan_engine::provider::ProviderError;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long old workers may take to finish their requests and exit.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(30);

/// How to address one running nginx.
#[derive(Debug, Clone)]
pub struct Nginx {
    pub bin: String,
    pub conf: PathBuf,
    pub prefix: Option<PathBuf>,
}

impl Nginx {
    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        if let Some(p) = &self.prefix {
            cmd.arg("-p").arg(p);
        }
        cmd.arg("-c").arg(&self.conf);
        cmd.kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str], doing: &str) -> Result<(), String> {
        let mut cmd = self.command();
        cmd.args(args);
        let out = cmd.output().await.map_err(|e| format!("nginx: cannot run {} for {doing}: {e}", self.bin))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr.trim().to_string())
        }
    }

    /// `nginx -t`: nginx's own message when it rejects the configuration.
    pub async fn test(&self) -> Result<(), String> {
        self.run(&["-t", "-q"], "the configuration test").await
    }

    /// `nginx -s reload`, then waits until every worker the master had
    /// before the signal has exited, so the new configuration alone serves.
    pub async fn reload_and_wait(&self) -> Result<(), ProviderError> {
        let pid_file = self.pid_file().await;
        let master = read_pid(&pid_file)
            .map_err(|e| ProviderError::other(format!("nginx: cannot read the master's pid from {}: {e}", pid_file.display())))?;
        let old = children(master);
        self.run(&["-s", "reload"], "the reload").await.map_err(|e| ProviderError::other(format!("nginx: reload failed: {e}")))?;
        let deadline = Instant::now() + WORKER_TIMEOUT;
        loop {
            let now = children(master);
            // Done once no old worker is left and the master has new ones
            // (a master that refused the new configuration keeps the old).
            if old.is_disjoint(&now) && !now.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ProviderError::transient(format!(
                    "nginx: old worker processes {:?} still run {} s after the reload (see nginx's error log)",
                    old.intersection(&now).collect::<Vec<_>>(),
                    WORKER_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `pid` directive of the main configuration, resolved against the
    /// prefix; nginx's compiled-in default when there is none.
    async fn pid_file(&self) -> PathBuf {
        let text = tokio::fs::read_to_string(&self.conf).await.unwrap_or_default();
        let declared = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .find_map(|l| l.strip_prefix("pid ").map(|v| v.trim().trim_end_matches(';').trim().to_string()));
        match declared {
            Some(p) if Path::new(&p).is_absolute() => PathBuf::from(p),
            Some(p) => self.prefix.clone().unwrap_or_else(|| PathBuf::from("/usr/share/nginx")).join(p),
            None => PathBuf::from("/run/nginx.pid"),
        }
    }
}

fn read_pid(path: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.trim().parse().map_err(|_| format!("{:?} is not a pid", text.trim()))
}

/// The pids whose parent is `parent`, from `/proc/*/stat`.
pub fn children(parent: u32) -> BTreeSet<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return BTreeSet::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The parent pid from `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after the
/// last ')'.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_a_child_of_its_parent() {
        let me = std::process::id();
        let parent = parent_of(me).expect("parent");
        assert!(children(parent).contains(&me));
    }
}
