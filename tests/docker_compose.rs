//! `docker_service` beside the real Docker Compose v2 CLI (issue 13), through
//! the `himaplan` binary against a real dockerd: coexistence in both
//! directions (container ids and `docker compose ps` after `docker compose
//! up`), the plan's warning when the declaration changes compose's hash,
//! graceful stops proven from Docker's event stream, and stopped containers
//! as drift that apply starts.
//!
//! Every compose file here sets `network_mode: none`, and each test checks
//! `docker network ls` is unchanged: compose would otherwise create a
//! default bridge on a private range. Compose comes from
//! `scripts/servers/compose.sh` (or `HIMAPLAN_DOCKER_COMPOSE`); under
//! `CI=true` a missing binary or daemon fails the test.

#[path = "support/docker.rs"]
mod docker;
mod support;

use docker::IMAGE;
use std::path::Path;
use std::time::Instant;
use support::{Run, TestDir};

/// `docker_service.web` of `project` as the compose file of
/// [`docker::compose_file`] declares it; `extra` goes inside the block.
fn web_hcl(project: &str, replicas: i64, extra: &str) -> String {
    format!(
        r#"resource "docker_service" "web" {{
  project      = "{project}"
  service      = "web"
  replicas     = {replicas}
  image        = "{IMAGE}"
  command      = ["sleep", "3600"]
  env          = {{ QUEUE = "default" }}
  network_mode = "none"
{extra}}}
"#
    )
}

fn run(dir: &TestDir, host: &str, compose: &Path, args: &[&str]) -> Run {
    dir.run_with(args, &[("DOCKER_HOST", host), ("HIMAPLAN_DOCKER_COMPOSE", &compose.to_string_lossy())], None)
}

fn apply(dir: &TestDir, host: &str, compose: &Path, what: &str) -> std::time::Duration {
    let started = Instant::now();
    run(dir, host, compose, &["apply", "--auto-approve"]).assert_code(0);
    let took = started.elapsed();
    eprintln!("MEASURE {what}: apply took {} ms", took.as_millis());
    took
}

fn ids(cs: &[docker::Container]) -> Vec<String> {
    cs.iter().map(|c| c.id.clone()).collect()
}

fn names(project: &str, n: i64) -> Vec<String> {
    (1..=n).map(|i| format!("{project}-web-{i}")).collect()
}

/// Compose first: `docker compose up -d --scale web=2`, then himaplan adopts
/// (the plan changes only replicas) and scales to 4; `docker compose up -d
/// --scale web=4` then recreates nothing and `docker compose ps` lists all
/// four, numbered 1..4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_first_then_himaplan_scales_and_compose_up_recreates_nothing() {
    let (Some(host), Some(bin)) = (docker::daemon(), docker::compose_bin()) else { return };
    let d = docker::client(host);
    let networks = docker::networks(&d).await;
    let proj = docker::project("cfirst");
    let dir = TestDir::new(&web_hcl(&proj, 4, ""));
    dir.write("docker-compose.yml", &docker::compose_file(""));
    docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "web=2"]);
    let made_by_compose = ids(&docker::containers(&d, &proj, "web").await);

    let plan = run(&dir, host, bin, &["plan"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains("Plan: 1 to import, 0 to add, 1 to change, 0 to destroy."), "{}", plan.stdout());
    assert!(plan.stdout().contains("replicas"), "{}", plan.stdout());
    assert!(!plan.stdout().contains("docker compose up"), "no compose warning expected:\n{}", plan.stdout());
    apply(&dir, host, bin, "scale a compose service 2 -> 4");
    let after_himaplan = docker::containers(&d, &proj, "web").await;
    assert_eq!(after_himaplan.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), names(&proj, 4));
    assert_eq!(ids(&after_himaplan[..2]), made_by_compose, "compose's containers kept");
    for c in &after_himaplan[2..] {
        assert_eq!(c.labels.get("com.docker.compose.config-hash"), after_himaplan[0].labels.get("com.docker.compose.config-hash"));
        assert!(!c.labels.contains_key("com.docker.compose.replace"));
    }

    let started = Instant::now();
    docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "web=4"]);
    eprintln!("MEASURE docker compose up --scale web=4 after himaplan: {} ms", started.elapsed().as_millis());
    assert_eq!(ids(&docker::containers(&d, &proj, "web").await), ids(&after_himaplan), "compose recreated containers");
    assert_eq!(docker::compose_ps(bin, host, dir.path(), &proj), names(&proj, 4));
    run(&dir, host, bin, &["plan", "--detailed-exitcode"]).assert_code(0);
    docker::cleanup(&d, &proj).await;
    assert_eq!(docker::networks(&d).await, networks, "a network was created");
}

/// himaplan first, with `compose_file`: himaplan creates the service from
/// nothing (labels from compose's own `config --hash`, taken at plan time);
/// `docker compose up -d --scale web=3` then recreates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn himaplan_first_with_compose_file_then_compose_up_recreates_nothing() {
    let (Some(host), Some(bin)) = (docker::daemon(), docker::compose_bin()) else { return };
    let d = docker::client(host);
    let networks = docker::networks(&d).await;
    let proj = docker::project("hfirst");
    let dir = TestDir::new(&web_hcl(&proj, 3, "  compose_file = \"docker-compose.yml\"\n"));
    dir.write("docker-compose.yml", &docker::compose_file(""));
    apply(&dir, host, bin, "create 3 containers with compose_file");
    let made = docker::containers(&d, &proj, "web").await;
    assert_eq!(made.len(), 3);
    let hash = docker::compose(bin, host, dir.path(), &proj, &["config", "--hash", "web"]);
    assert_eq!(made[0].labels.get("com.docker.compose.config-hash").map(String::as_str), hash.split_whitespace().nth(1));
    docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "web=3"]);
    assert_eq!(ids(&docker::containers(&d, &proj, "web").await), ids(&made), "compose recreated containers");
    assert_eq!(docker::compose_ps(bin, host, dir.path(), &proj), names(&proj, 3));
    run(&dir, host, bin, &["plan", "--detailed-exitcode"]).assert_code(0);
    docker::cleanup(&d, &proj).await;
    assert_eq!(docker::networks(&d).await, networks, "a network was created");
}

/// A declaration that changes what compose hashes (here the command) is
/// planned with the warning that the next `docker compose up` recreates
/// the containers; with `compose_file`, the plan names what disagrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaration_changing_the_compose_hash_is_warned() {
    let (Some(host), Some(bin)) = (docker::daemon(), docker::compose_bin()) else { return };
    let d = docker::client(host);
    let proj = docker::project("warn");
    let hcl = web_hcl(&proj, 2, "").replace(r#"["sleep", "3600"]"#, r#"["sleep", "3601"]"#);
    let dir = TestDir::new(&hcl);
    dir.write("docker-compose.yml", &docker::compose_file(""));
    docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "web=2"]);
    let plan = run(&dir, host, bin, &["plan"]);
    plan.assert_code(0);
    let warning = format!("the next `docker compose up` recreates 2 containers of {proj}/web unless docker-compose.yml is updated");
    assert!(plan.stdout().contains(&warning), "{}", plan.stdout());

    // With compose_file (and state: the service applied as compose has it).
    let with_file = |h: &str| h.replace("network_mode = \"none\"", "network_mode = \"none\"\n  compose_file = \"docker-compose.yml\"");
    dir.write("main.hcl", &with_file(&web_hcl(&proj, 2, "")));
    apply(&dir, host, bin, "adopt with compose_file");
    dir.write("main.hcl", &with_file(&hcl));
    let plan = run(&dir, host, bin, &["plan"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains(&warning), "{}", plan.stdout());
    assert!(plan.stdout().contains("docker-compose.yml disagrees with the declaration: command"), "{}", plan.stdout());
    docker::cleanup(&d, &proj).await;
}

/// Compose v2.40.3's `config --hash` ignores env_file (docker/compose#14001):
/// a compose_file service using it is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_file_in_a_compose_file_service_is_refused() {
    let (Some(host), Some(bin)) = (docker::daemon(), docker::compose_bin()) else { return };
    let proj = docker::project("envfile");
    let dir = TestDir::new(&web_hcl(&proj, 1, "  compose_file = \"docker-compose.yml\"\n"));
    dir.write("web.env", "EXTRA=1\n");
    dir.write("docker-compose.yml", &docker::compose_file("    env_file: web.env\n"));
    let plan = run(&dir, host, bin, &["plan"]);
    plan.assert_code(1);
    assert!(plan.all().contains("env_file"), "{}", plan.all());
    assert!(plan.all().contains("14001"), "{}", plan.all());
}

/// The kill/die events of one container, with the seconds from its first
/// kill to its die.
fn stop_story(events: &[docker::Event], id: &str) -> (Vec<String>, f64) {
    let mine: Vec<&docker::Event> = events.iter().filter(|e| e.id == id && matches!(e.action.as_str(), "kill" | "die")).collect();
    let story = mine.iter().map(|e| format!("{}({})", e.action, e.detail)).collect();
    let took = match (mine.first(), mine.iter().find(|e| e.action == "die")) {
        (Some(k), Some(die)) => die.at - k.at,
        _ => f64::NAN,
    };
    (story, took)
}

const TRAPS_TERM: &str = r#"["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]"#;
const IGNORES_TERM: &str = r#"["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]"#;

/// Scale-down and recreate stop each container with SIGTERM and wait: a
/// command that traps SIGTERM exits 0 (not 137), on scale-down and on a
/// recreate of 4 containers at max_unavailable = 2; one that ignores it is
/// killed after `stop_timeout`: kill(15) → kill(9) → die(137).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_and_recreate_stop_with_sigterm_then_wait() {
    let Some(host) = docker::daemon() else { return };
    let bin = docker::compose_bin().map(Path::to_path_buf).unwrap_or_default();
    let d = docker::client(host);
    let proj = docker::project("term");
    let hcl = |replicas: i64, cmd: &str, env: &str, stop: &str| {
        web_hcl(&proj, replicas, &format!("  rollout {{\n    max_unavailable = 2\n  }}\n{stop}"))
            .replace(r#"["sleep", "3600"]"#, cmd)
            .replace(r#"{ QUEUE = "default" }"#, env)
    };
    let dir = TestDir::new(&hcl(4, TRAPS_TERM, r#"{ V = "1" }"#, ""));
    apply(&dir, host, &bin, "create 4 TERM-trapping containers");

    // Scale-down 4 -> 3.
    let since = docker::now() - 1;
    let old = docker::containers(&d, &proj, "web").await;
    dir.write("main.hcl", &hcl(3, TRAPS_TERM, r#"{ V = "1" }"#, ""));
    apply(&dir, host, &bin, "scale down 4 -> 3");
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;
    let (story, took) = stop_story(&events, &old[3].id);
    eprintln!("MEASURE scale-down SIGTERM to exit: {:.3} s ({story:?})", took);
    assert_eq!(story, vec!["kill(15)".to_string(), "die(0)".to_string()]);

    // Recreate of all containers (env change), 2 at a time.
    dir.write("main.hcl", &hcl(4, TRAPS_TERM, r#"{ V = "1" }"#, ""));
    apply(&dir, host, &bin, "scale back to 4");
    let since = docker::now() - 1;
    let old = docker::containers(&d, &proj, "web").await;
    dir.write("main.hcl", &hcl(4, TRAPS_TERM, r#"{ V = "2" }"#, ""));
    apply(&dir, host, &bin, "recreate 4 containers at max_unavailable = 2");
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;
    let old_ids = ids(&old);
    eprintln!("MEASURE recreate of 4 at max_unavailable = 2: at most {} down at once", docker::max_down_at_once(&events, &old_ids));
    for (n, c) in old.iter().enumerate() {
        let (story, took) = stop_story(&events, &c.id);
        let n = n + 1;
        eprintln!("MEASURE recreate SIGTERM to exit web-{n}: {:.3} s", took);
        assert_eq!(story, vec!["kill(15)".to_string(), "die(0)".to_string()], "web-{n}");
    }

    // A command that ignores SIGTERM is killed after stop_timeout.
    dir.write("main.hcl", &hcl(2, IGNORES_TERM, r#"{ V = "2" }"#, "  stop_timeout = 2\n"));
    apply(&dir, host, &bin, "recreate into TERM-ignoring containers");
    let since = docker::now() - 1;
    let old = docker::containers(&d, &proj, "web").await;
    dir.write("main.hcl", &hcl(1, IGNORES_TERM, r#"{ V = "2" }"#, "  stop_timeout = 2\n"));
    apply(&dir, host, &bin, "scale down a TERM-ignoring container");
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;
    let (story, took) = stop_story(&events, &old[1].id);
    eprintln!("MEASURE SIGTERM ignored, stop_timeout = 2: kill(15) to die(137) took {took:.3} s");
    assert_eq!(story, vec!["kill(15)".to_string(), "kill(9)".to_string(), "die(137)".to_string()]);
    docker::cleanup(&d, &proj).await;
}

/// `docker stop` out of band: `drift --detailed-exitcode` exits 2, the plan
/// shows the container to start (not a replicas change), and apply starts
/// it without touching the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_container_is_drift_and_apply_starts_only_it() {
    let Some(host) = docker::daemon() else { return };
    let bin = docker::compose_bin().map(Path::to_path_buf).unwrap_or_default();
    let d = docker::client(host);
    let proj = docker::project("stopped");
    let dir = TestDir::new(&web_hcl(&proj, 3, ""));
    apply(&dir, host, &bin, "create 3 containers");
    let before = docker::containers(&d, &proj, "web").await;
    d.stop_container(&before[1].id, None::<bollard::query_parameters::StopContainerOptions>).await.expect("docker stop");

    run(&dir, host, &bin, &["drift", "--detailed-exitcode"]).assert_code(2);
    let plan = run(&dir, host, &bin, &["plan"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains(&format!("start {proj}-web-2")), "{}", plan.stdout());
    assert!(!plan.stdout().contains("replicas"), "{}", plan.stdout());
    apply(&dir, host, &bin, "start one stopped container");
    let after = docker::containers(&d, &proj, "web").await;
    assert_eq!(ids(&after), ids(&before), "nothing recreated");
    assert!(after.iter().all(|c| c.running));
    assert_eq!(after[0].started_at, before[0].started_at, "web-1 untouched");
    assert_eq!(after[2].started_at, before[2].started_at, "web-3 untouched");
    run(&dir, host, &bin, &["drift", "--detailed-exitcode"]).assert_code(0);
    docker::cleanup(&d, &proj).await;
}

/// `apply FILE` never runs compose: the hash computed when planning is in
/// the plan and is reused. The apply runs with a "compose" that records
/// being called and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_with_compose_file_applies_without_running_compose() {
    let (Some(host), Some(bin)) = (docker::daemon(), docker::compose_bin()) else { return };
    let d = docker::client(host);
    let proj = docker::project("saved");
    let dir = TestDir::new(&web_hcl(&proj, 2, "  compose_file = \"docker-compose.yml\"\n"));
    dir.write("docker-compose.yml", &docker::compose_file(""));
    run(&dir, host, bin, &["plan", "--out", "create.plan"]).assert_code(0);
    let marker = dir.join("compose-was-run");
    let fake = dir.join("fake-compose.sh");
    std::fs::write(&fake, format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display())).expect("write the fake compose");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    run(&dir, host, &fake, &["apply", "create.plan"]).assert_code(0);
    assert!(!marker.exists(), "apply FILE ran compose");
    let made = docker::containers(&d, &proj, "web").await;
    let hash = docker::compose(bin, host, dir.path(), &proj, &["config", "--hash", "web"]);
    assert_eq!(made.len(), 2);
    assert!(made.iter().all(|c| c.labels.get("com.docker.compose.config-hash").map(String::as_str) == hash.split_whitespace().nth(1)));
    docker::cleanup(&d, &proj).await;
}
