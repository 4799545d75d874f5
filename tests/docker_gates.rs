//! Health-gated Docker rollouts through the `himaplan` binary against the
//! tests' dockerd: a `docker_service` of 3 containers recreated one at a
//! time, each gated by a `command` run inside it (`docker exec`) that
//! passes once the container's own command has created a ready file.
//! Containers run with network_mode "none", or "host" serving on a loopback
//! port that nginx and the gate reach: nothing leaves loopback.

#[path = "support/docker.rs"]
mod docker;
#[path = "support/servers.rs"]
mod servers;
mod support;

use docker::IMAGE;
use support::{Run, TestDir};

/// 3 replicas whose command is `script`, gated by `test -f /tmp/ready`.
fn service_hcl(project: &str, script: &str) -> String {
    format!(
        r#"
resource "docker_service" "web" {{
  project      = "{project}"
  service      = "web"
  replicas     = 3
  image        = "{IMAGE}"
  command      = ["sh", "-c", "{script}"]
  network_mode = "none"
  stop_timeout = 1
  rollout {{
    max_unavailable = 1
    health_check {{
      command  = ["test", "-f", "/tmp/ready"]
      interval = "200ms"
      timeout  = "4s"
    }}
  }}
}}
"#
    )
}

fn run(dir: &TestDir, host: &str, args: &[&str]) -> Run {
    dir.run_with(args, &[("DOCKER_HOST", host)], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_gate_rolls_a_good_version_and_stops_a_bad_one_after_its_first_batch() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let proj = docker::project("gates");
    let good = |v: u32| format!("sleep 0.3; touch /tmp/ready; sleep 360{v}");
    let dir = TestDir::new(&service_hcl(&proj, &good(0)));
    run(&dir, host, &["apply", "--auto-approve"]).assert_code(0);
    let first = docker::containers(&d, &proj, "web").await;
    assert_eq!(first.len(), 3);

    // A good version: every batch waits for its container's ready file.
    dir.write("main.hcl", &service_hcl(&proj, &good(1)));
    let plan = run(&dir, host, &["plan"]);
    plan.assert_code(0);
    let gate_line = format!("→ {proj}-web-2: wait until `test -f /tmp/ready` exits 0 inside it, at most 4s");
    assert!(plan.stdout().contains(&gate_line), "the plan shows each container's gate ({gate_line:?}):\n{}", plan.stdout());
    let started = std::time::Instant::now();
    run(&dir, host, &["apply", "--auto-approve"]).assert_code(0);
    let good_rollout = started.elapsed();
    let second = docker::containers(&d, &proj, "web").await;
    assert!(second.iter().all(|c| c.running && c.cmd.last().is_some_and(|s| s.ends_with("sleep 3601"))), "{second:?}");

    // A version that never becomes ready: the first batch fails its gate,
    // the other two containers are untouched and running.
    dir.write("main.hcl", &service_hcl(&proj, "sleep 3602"));
    let failed = run(&dir, host, &["apply", "--auto-approve"]);
    failed.assert_code(1);
    assert!(failed.stderr().contains("is not healthy"), "{}", failed.stderr());
    assert!(failed.stderr().contains("exit 1"), "the error gives the command's last result: {}", failed.stderr());
    let third = docker::containers(&d, &proj, "web").await;
    let unchanged: Vec<&str> = third.iter().filter(|c| second.iter().any(|s| s.id == c.id)).map(|c| c.name.as_str()).collect();
    assert_eq!(unchanged, [format!("{proj}-web-2"), format!("{proj}-web-3")], "only the first batch was recreated");
    assert!(third.iter().all(|c| c.running), "{third:?}");
    assert!(dir.state_text().contains("\"unhealthy\""), "state records the failed gate");

    // The next apply with a good version completes.
    dir.write("main.hcl", &service_hcl(&proj, &good(3)));
    run(&dir, host, &["apply", "--auto-approve"]).assert_code(0);
    let fourth = docker::containers(&d, &proj, "web").await;
    assert!(fourth.iter().all(|c| c.running && c.cmd.last().is_some_and(|s| s.ends_with("sleep 3603"))), "{fourth:?}");
    assert!(!dir.state_text().contains("\"unhealthy\""), "the mark is cleared");
    run(&dir, host, &["plan", "--detailed-exitcode"]).assert_code(0);
    eprintln!("MEASURE gated recreate of 3 containers (each ready after 0.3 s, probed every 0.2 s): {good_rollout:.2?}");
    docker::cleanup(&d, &proj).await;
}

/// One container on the host network serving `/www` with busybox httpd on
/// `port`, behind the upstream; `health` decides whether `/health/` exists.
fn httpd_hcl(project: &str, port: u16, health: bool, nginx: &servers::Nginx, nginx_bin: &std::path::Path) -> String {
    let make = if health { "mkdir -p /www/health && echo ok > /www/health/index.html" } else { "mkdir -p /www" };
    format!(
        r#"
resource "docker_service" "web" {{
  project      = "{project}"
  service      = "web"
  replicas     = 1
  image        = "{IMAGE}"
  command      = ["sh", "-c", "{make}; exec httpd -f -p 127.0.0.1:{port} -h /www"]
  network_mode = "host"
  stop_timeout = 1
  rollout {{
    health_check {{
      http     = "http://127.0.0.1:{port}/health/"
      interval = "200ms"
      timeout  = "3s"
    }}
  }}
}}

resource "nginx_upstream" "web" {{
  config_file  = "{file}"
  name         = "{name}"
  servers      = [for c in docker_service.web.containers : "127.0.0.1:${{{port} + c.number - 1}}"]
  nginx_conf   = "{conf}"
  nginx_prefix = "{prefix}"
  nginx_bin    = "{bin}"
}}
"#,
        file = nginx.upstream_file.display(),
        name = servers::UPSTREAM_NAME,
        conf = nginx.conf.display(),
        prefix = nginx.prefix.display(),
        bin = nginx_bin.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_gate_answered_404_keeps_the_container_drained_until_a_good_version_passes() {
    let Some(host) = docker::daemon() else { return };
    let Some(nginx) = servers::Nginx::start("docker-gate") else { return };
    let d = docker::client(host);
    let proj = docker::project("httpgate");
    let port = servers::free_port().expect("a free port");
    let wrapper = docker::reload_recorder(&nginx.prefix, &nginx.upstream_file);
    let dir = TestDir::new(&httpd_hcl(&proj, port, true, &nginx, &wrapper));
    run(&dir, host, &["apply", "--auto-approve"]).assert_code(0);
    let server = format!("127.0.0.1:{port}");
    let in_rotation = || docker::Reload { before: 0.0, after: 0.0, exit: 0, text: nginx.upstream_text() }.lists(&server);
    assert!(in_rotation(), "{}", nginx.upstream_text());

    // A version answering 404 on /health/: the gate fails, the container stays drained.
    dir.write("main.hcl", &httpd_hcl(&proj, port, false, &nginx, &wrapper));
    let failed = run(&dir, host, &["apply", "--auto-approve"]);
    failed.assert_code(1);
    assert!(failed.stderr().contains("HTTP 404"), "the error gives the last answer: {}", failed.stderr());
    assert!(!in_rotation(), "the failing container is still out of the upstream:\n{}", nginx.upstream_text());
    assert!(nginx.upstream_text().contains(&format!("server {server} down;")), "{}", nginx.upstream_text());
    assert!(dir.state_text().contains("\"unhealthy\""), "state records the failed gate");

    // The next good version is gated, then put back.
    dir.write("main.hcl", &httpd_hcl(&proj, port, true, &nginx, &wrapper));
    run(&dir, host, &["apply", "--auto-approve"]).assert_code(0);
    assert!(in_rotation(), "back in rotation once healthy:\n{}", nginx.upstream_text());
    assert!(!dir.state_text().contains("\"unhealthy\""), "the mark is cleared");
    run(&dir, host, &["plan", "--detailed-exitcode"]).assert_code(0);
    docker::cleanup(&d, &proj).await;
}
