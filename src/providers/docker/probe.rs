//! Health checks inside a container: a rollout gate's `command` run with
//! `docker exec` (what `docker compose exec` does), healthy on exit 0.
//! Only the output's tail is kept, for the failure message.

use bollard::Docker;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use futures::StreamExt;

/// How much of the command's output a failure quotes.
const TAIL: usize = 512;

/// Runs `command` in `container`; `Ok` on exit 0, else the exit code and
/// the output's last line.
pub async fn run(docker: &Docker, container: &str, command: &[String]) -> Result<String, String> {
    let config = ExecConfig { attach_stdout: Some(true), attach_stderr: Some(true), cmd: Some(command.to_vec()), ..Default::default() };
    let exec = docker.create_exec(container, config).await.map_err(|e| format!("docker exec in {container}: {e}"))?;
    let mut tail = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.map_err(|e| format!("docker exec in {container}: {e}"))?
    {
        while let Some(Ok(chunk)) = output.next().await {
            tail.push_str(&chunk.to_string());
            if tail.len() > 2 * TAIL {
                let cut = tail.len() - TAIL;
                let cut = (cut..tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(tail.len());
                tail.drain(..cut);
            }
        }
    }
    let inspect = docker.inspect_exec(&exec.id).await.map_err(|e| format!("docker exec in {container}: {e}"))?;
    let last = tail.lines().last().unwrap_or_default().trim().to_string();
    match inspect.exit_code {
        Some(0) => Ok(format!("{container}: exit 0")),
        Some(code) if last.is_empty() => Err(format!("{container}: exit {code}")),
        Some(code) => Err(format!("{container}: exit {code}: {last}")),
        None => Err(format!("{container}: the command reported no exit code")),
    }
}
