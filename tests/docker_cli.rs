//! `docker_service` end to end through the `himaplan` binary against a real
//! dockerd (issue 4), and its ordering with an `nginx_upstream` that lists
//! the containers (issue 5): scaling as compose numbers and names, live
//! limit changes, rollouts bounded by `max_unavailable`, adoption of a
//! compose stack, drift, bad inputs, and scale-down/up ordering with nginx.
//!
//! Every assertion rests on what the daemons report (container inspection,
//! Docker's event stream with nanosecond times, the include file nginx was
//! reloaded with), never on himaplan's own account alone. The daemon comes
//! from tests/support/docker.rs (`scripts/servers/dockerd.sh`); each test
//! uses its own compose project, so tests may run in parallel. Containers
//! run with network_mode "none", and the nginx of the ordering test only
//! defines the upstream (tests/support/servers.rs): nothing leaves loopback.

#[path = "support/docker.rs"]
mod docker;
#[path = "support/servers.rs"]
mod servers;
mod support;

use docker::{Container, IMAGE};
use std::time::Instant;
use support::{Run, StateFiles, TestDir};

/// One `docker_service "web"` of `project` whose replicas, limits and
/// command come from variables; `extra` goes inside the resource block.
fn service_hcl(project: &str, extra: &str) -> String {
    format!(
        r#"variable "replicas" {{
  type    = number
  default = 1
}}

variable "cpus" {{
  type    = number
  default = 0.5
}}

variable "memory" {{
  type    = string
  default = "64M"
}}

variable "sleep" {{
  type    = string
  default = "3600"
}}

resource "docker_service" "web" {{
  project      = "{project}"
  service      = "web"
  replicas     = var.replicas
  image        = "{IMAGE}"
  command      = ["sleep", var.sleep]
  network_mode = "none"
  cpus         = var.cpus
  memory       = var.memory
{extra}}}
"#
    )
}

/// Runs himaplan in `dir` with DOCKER_HOST set to the test daemon.
fn run(dir: &TestDir, host: &str, args: &[&str]) -> Run {
    dir.run_with(args, &[("DOCKER_HOST", host)], None)
}

/// Runs `apply --auto-approve ARGS`, asserts success, prints and returns
/// how long it took.
fn apply(dir: &TestDir, host: &str, what: &str, args: &[&str]) -> std::time::Duration {
    let mut all = vec!["apply", "--auto-approve"];
    all.extend_from_slice(args);
    let started = Instant::now();
    run(dir, host, &all).assert_code(0);
    let took = started.elapsed();
    eprintln!("MEASURE {what}: apply took {} ms", took.as_millis());
    took
}

fn names(cs: &[Container]) -> Vec<String> {
    cs.iter().map(|c| c.name.clone()).collect()
}

fn expected_names(project: &str, n: i64) -> Vec<String> {
    (1..=n).map(|i| format!("{project}-web-{i}")).collect()
}

/// The `containers` attribute of docker_service.web in state, as names.
fn state_container_names(dir: &TestDir) -> Vec<String> {
    dir.state_attrs("docker_service.web")["containers"]
        .as_array()
        .expect("containers in state")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Scaling and live limits

/// Scaling 1 → 4 → 2 with `--var replicas` leaves exactly PROJECT-web-1..N,
/// keeps the containers that stay, and removes 4 before 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_one_to_four_to_two_names_like_compose_and_removes_highest_first() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let proj = docker::project("scale");
    let dir = TestDir::new(&service_hcl(&proj, ""));

    apply(&dir, host, "create 1 container", &[]);
    let one = docker::containers(&d, &proj, "web").await;
    assert_eq!(names(&one), expected_names(&proj, 1));

    apply(&dir, host, "scale 1 → 4", &["--var", "replicas=4"]);
    let four = docker::containers(&d, &proj, "web").await;
    assert_eq!(names(&four), expected_names(&proj, 4));
    assert_eq!(four.iter().map(|c| c.number).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(four.iter().all(|c| c.running), "{four:?}");
    assert_eq!(four[0].id, one[0].id, "container 1 was kept");
    assert!(four.iter().all(|c| c.labels.get("himaplan.io/address").map(String::as_str) == Some("docker_service.web")));
    assert_eq!(state_container_names(&dir), expected_names(&proj, 4));

    let since = docker::now() - 1;
    apply(&dir, host, "scale 4 → 2", &["--var", "replicas=2"]);
    let two = docker::containers(&d, &proj, "web").await;
    assert_eq!(names(&two), expected_names(&proj, 2));
    assert_eq!(two.iter().map(|c| &c.id).collect::<Vec<_>>(), four[..2].iter().map(|c| &c.id).collect::<Vec<_>>());
    let destroyed: Vec<String> =
        docker::events(&d, &proj, since, docker::now() + 1).await.into_iter().filter(|e| e.action == "destroy").map(|e| e.name).collect();
    assert_eq!(destroyed, vec![format!("{proj}-web-4"), format!("{proj}-web-3")]);
    assert_eq!(state_container_names(&dir), expected_names(&proj, 2));
    docker::cleanup(&d, &proj).await;
}

/// Raising cpus and memory on 4 containers is planned as a live update (no
/// "recreate") and applied without restarting anything: the daemon reports
/// the new NanoCpus/Memory and every StartedAt is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_cpus_and_memory_updates_live_without_restart() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let proj = docker::project("limits");
    let dir = TestDir::new(&service_hcl(&proj, ""));
    apply(&dir, host, "create 4 containers (0.5 cpus, 64M)", &["--var", "replicas=4"]);
    let before = docker::containers(&d, &proj, "web").await;
    assert!(before.iter().all(|c| c.nano_cpus == Some(500_000_000) && c.memory == Some(64 << 20)), "{before:?}");

    let raise = ["--var", "replicas=4", "--var", "cpus=1.5", "--var", "memory=256M"];
    let plan = run(&dir, host, &[&["plan"], &raise[..]].concat());
    plan.assert_code(0);
    let text = plan.stdout();
    assert!(text.contains("# cpus: live update, no restart"), "{text}");
    assert!(text.contains("# memory: live update, no restart"), "{text}");
    assert!(!text.contains("recreate") && !text.contains("disruptive"), "{text}");
    assert!(text.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{text}");

    apply(&dir, host, "live limits on 4 containers", &raise);
    let after = docker::containers(&d, &proj, "web").await;
    assert_eq!(after.len(), 4);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.id, b.id, "{} was replaced", a.name);
        assert_eq!(a.nano_cpus, Some(1_500_000_000), "{}", a.name);
        assert_eq!(a.memory, Some(256 << 20), "{}", a.name);
        assert!(a.running, "{}", a.name);
        assert_eq!(a.started_at, b.started_at, "{} restarted", a.name);
    }
    run(&dir, host, &[&["plan", "--detailed-exitcode"], &raise[..]].concat()).assert_code(0);
    docker::cleanup(&d, &proj).await;
}

// ---------------------------------------------------------------------------
// Rollouts

/// Changing `command` on 4 replicas under `rollout` (None: the default)
/// recreates every container (new ids, same names) with never more than
/// `expected` down at once — judged from Docker's events (a container is
/// down from the kill of its old id to the start of its new one) and from a
/// 50 ms running-count poll.
async fn command_change_rollout(rollout: Option<u32>, expected: usize) {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let proj = docker::project(&format!("roll{}", rollout.unwrap_or(0)));
    let extra = rollout.map(|n| format!("\n  rollout {{\n    max_unavailable = {n}\n  }}\n")).unwrap_or_default();
    let dir = TestDir::new(&service_hcl(&proj, &extra));
    apply(&dir, host, "create 4 containers", &["--var", "replicas=4"]);
    let before = docker::containers(&d, &proj, "web").await;

    let change = ["--var", "replicas=4", "--var", "sleep=3601"];
    let plan = run(&dir, host, &[&["plan"], &change[..]].concat());
    plan.assert_code(0);
    assert!(plan.stdout().contains("(disruptive: recreate)"), "{}", plan.stdout());

    let since = docker::now() - 1;
    let poller = docker::RunningPoller::start(&d, &proj, "web");
    let (dir, host_owned) = (std::sync::Arc::new(dir), host.to_string());
    let took = {
        let dir = dir.clone();
        let what = format!("command change on 4 containers, max_unavailable {rollout:?}");
        tokio::task::spawn_blocking(move || apply(&dir, &host_owned, &what, &change)).await.expect("apply task")
    };
    let fewest = poller.stop().await;
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;

    let after = docker::containers(&d, &proj, "web").await;
    assert_eq!(names(&after), expected_names(&proj, 4));
    for (b, a) in before.iter().zip(&after) {
        assert_ne!(a.id, b.id, "{} was not recreated", a.name);
        assert_eq!(a.cmd, vec!["sleep", "3601"], "{}", a.name);
        assert!(a.running, "{}", a.name);
    }
    let old_ids: Vec<String> = before.iter().map(|c| c.id.clone()).collect();
    let most = docker::max_down_at_once(&events, &old_ids);
    eprintln!(
        "MEASURE rollout max_unavailable {rollout:?}: {} ms, max down at once (events) {most}, fewest running (poll) {fewest}",
        took.as_millis()
    );
    assert_eq!(most, expected, "containers down at once, from the event stream");
    assert!(4 - fewest.min(4) <= expected, "the poll saw {fewest} of 4 running");
    run(&dir, host, &[&["plan", "--detailed-exitcode"], &change[..]].concat()).assert_code(0);
    docker::cleanup(&d, &proj).await;
}

/// `rollout { max_unavailable = 2 }`: two containers at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_change_recreates_two_at_a_time_under_max_unavailable_2() {
    command_change_rollout(Some(2), 2).await;
}

/// No rollout block: the default of one container at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_change_recreates_one_at_a_time_by_default() {
    command_change_rollout(None, 1).await;
}

// ---------------------------------------------------------------------------
// Adoption and drift

/// The attributes a plan JSON's change of docker_service.web modifies
/// (computed `containers` left out).
fn changed_attributes(plan: &serde_json::Value) -> Vec<String> {
    let Some(change) = plan["resource_changes"].as_array().and_then(|rc| rc.iter().find(|c| c["address"] == "docker_service.web")) else {
        return Vec::new();
    };
    let (before, after) = (&change["change"]["before"], &change["change"]["after"]);
    let mut keys: Vec<String> = after
        .as_object()
        .map(|o| o.keys().filter(|k| *k != "containers" && before[k.as_str()] != after[k.as_str()]).cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The configuration of a compose stack `project`/web of 2 containers
/// (`sleep 3600`, QUEUE=default), at `replicas`; `import` adds an import block.
fn compose_config(project: &str, replicas: i64, import: bool) -> String {
    let import = if import { format!("import {{\n  to = docker_service.web\n  id = \"{project}/web\"\n}}\n\n") } else { String::new() };
    format!(
        r#"{import}resource "docker_service" "web" {{
  project      = "{project}"
  service      = "web"
  replicas     = {replicas}
  image        = "{IMAGE}"
  command      = ["sleep", "3600"]
  env          = {{ QUEUE = "default" }}
  network_mode = "none"
}}
"#
    )
}

/// A stack of 2 containers made by the real `docker compose up --scale web=2`
/// is adopted through an `import` block: the first plan shows only the
/// real differences (nothing, or just replicas), and applying keeps the
/// compose containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_stack_is_adopted_through_import_with_only_real_differences() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    // (replicas declared, attributes the first plan changes, Plan: line)
    let cases: &[(i64, &[&str], &str)] = &[
        (2, &[], "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy."),
        (3, &["replicas"], "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy."),
    ];
    for (replicas, changes, summary) in cases {
        let Some(bin) = docker::compose_bin() else { return };
        let proj = docker::project(&format!("adopt{replicas}"));
        let dir = TestDir::new(&compose_config(&proj, *replicas, true));
        dir.write("docker-compose.yml", &docker::compose_file(""));
        docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "web=2"]);
        let ids: Vec<String> = docker::containers(&d, &proj, "web").await.into_iter().map(|c| c.id).collect();
        let plan = run(&dir, host, &["plan", "--format", "json"]);
        plan.assert_code(0);
        assert_eq!(changed_attributes(&plan.json()), changes.to_vec(), "replicas {replicas}:\n{}", plan.stdout());
        let human = run(&dir, host, &["plan"]);
        assert!(human.stdout().contains(summary), "replicas {replicas}:\n{}", human.stdout());
        assert!(!human.stdout().contains("will be created"), "{}", human.stdout());

        apply(&dir, host, &format!("adopt compose stack at replicas {replicas}"), &[]);
        let now = docker::containers(&d, &proj, "web").await;
        assert_eq!(names(&now), expected_names(&proj, *replicas));
        assert_eq!(now[..2].iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids, "the compose containers were kept");
        run(&dir, host, &["plan", "--detailed-exitcode"]).assert_code(0);
        docker::cleanup(&d, &proj).await;
    }
}

/// SPEC §4: a docker_service *is* the containers carrying its compose
/// labels, so a compose stack is recognised without `import`: with no state
/// the first plan must be an update showing only replicas, not a create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_stack_is_recognised_without_import() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let Some(bin) = docker::compose_bin() else { return };
    let proj = docker::project("recognise");
    let dir = TestDir::new(&compose_config(&proj, 3, false));
    dir.write("docker-compose.yml", &docker::compose_file(""));
    docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "web=2"]);
    let plan = run(&dir, host, &["plan", "--format", "json"]);
    docker::cleanup(&d, &proj).await;
    plan.assert_code(0);
    let json = plan.json();
    assert_eq!(json["resource_changes"][0]["change"]["actions"], serde_json::json!(["update"]), "{}", plan.stdout());
    assert_eq!(changed_attributes(&json), vec!["replicas".to_string()]);
}

/// A container removed out of band: `drift --detailed-exitcode` exits 2
/// without changing anything, `apply` recreates PROJECT-web-2, and drift is
/// then clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_removed_out_of_band_is_drift_and_apply_restores_it() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let proj = docker::project("drift");
    let dir = TestDir::new(&service_hcl(&proj, ""));
    apply(&dir, host, "create 3 containers", &["--var", "replicas=3"]);
    let before = docker::containers(&d, &proj, "web").await;
    docker::cleanup_one(&d, &before[1].id).await;

    let files = StateFiles::capture(&dir, support::DEFAULT_STATE);
    let drift = run(&dir, host, &["drift", "--detailed-exitcode", "--var", "replicas=3"]);
    drift.assert_code(2);
    assert!(drift.stdout().contains("docker_service.web"), "{}", drift.stdout());
    assert_eq!(StateFiles::capture(&dir, support::DEFAULT_STATE), files, "drift changed state files");
    assert_eq!(docker::containers(&d, &proj, "web").await.len(), 2, "drift touched containers");

    apply(&dir, host, "restore 1 of 3 containers", &["--var", "replicas=3"]);
    let after = docker::containers(&d, &proj, "web").await;
    assert_eq!(names(&after), expected_names(&proj, 3));
    assert_eq!((after[0].id.as_str(), after[2].id.as_str()), (before[0].id.as_str(), before[2].id.as_str()));
    assert_ne!(after[1].id, before[1].id);
    run(&dir, host, &["drift", "--detailed-exitcode", "--var", "replicas=3"]).assert_code(0);
    docker::cleanup(&d, &proj).await;
}

// ---------------------------------------------------------------------------
// Bad input

/// Bad inputs (a memory unit Docker does not know, negative replicas, an
/// unreachable daemon) make `apply` exit 1 with a message naming the file
/// and line, and change nothing: same state files, same containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_exit_1_with_file_and_line_and_change_nothing() {
    let Some(host) = docker::daemon() else { return };
    let d = docker::client(host);
    let proj = docker::project("bad");
    let dir = TestDir::new(&service_hcl(&proj, ""));
    apply(&dir, host, "create 2 containers", &["--var", "replicas=2"]);
    let before = docker::containers(&d, &proj, "web").await;
    let files = StateFiles::capture(&dir, support::DEFAULT_STATE);

    // (case, extra file written beside main.hcl, arguments, expected fragments)
    let cases: &[(&str, Option<(&str, &str)>, &[&str], &[&str])] = &[
        ("memory 8X", None, &["--var", "replicas=2", "--var", "memory=8X"], &["\"8X\" is not a memory size", "main.hcl:29"]),
        ("replicas -1", None, &["--var", "replicas=-1"], &["replicas must be a whole number ≥ 0, not -1", "main.hcl:24"]),
        (
            "unreachable daemon",
            Some(("provider.hcl", "provider \"docker\" {\n  host = \"unix:///nonexistent.sock\"\n}\n")),
            &["--var", "replicas=3"],
            &["cannot reach the Docker daemon at unix:///nonexistent.sock", "is dockerd running?", "provider.hcl:1"],
        ),
    ];
    for (case, extra, args, fragments) in cases {
        if let Some((name, text)) = extra {
            dir.write(name, text);
        }
        let out = run(&dir, host, &[&["apply", "--auto-approve"], *args].concat());
        out.assert_code(1);
        let err = out.stderr();
        for f in *fragments {
            assert!(err.contains(f), "{case}: {f:?} missing from:\n{err}");
        }
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert_eq!(StateFiles::capture(&dir, support::DEFAULT_STATE), files, "{case}: state files changed");
        assert_eq!(docker::containers(&d, &proj, "web").await, before, "{case}: containers changed");
        if let Some((name, _)) = extra {
            dir.remove(name);
        }
    }
    docker::cleanup(&d, &proj).await;
}

// ---------------------------------------------------------------------------
// Ordering with an nginx upstream listing the containers

/// docker_service.web and an nginx_upstream whose servers are
/// 127.0.0.1:(8000 + number) of its containers, reloaded through `nginx_bin`.
fn upstream_hcl(project: &str, nginx: &servers::Nginx, nginx_bin: &std::path::Path) -> String {
    upstream_hcl_with(project, nginx, nginx_bin, "")
}

/// [`upstream_hcl`] with `extra` in the service's body.
fn upstream_hcl_with(project: &str, nginx: &servers::Nginx, nginx_bin: &std::path::Path, extra: &str) -> String {
    let service = service_hcl(project, extra);
    format!(
        r#"{service}
resource "nginx_upstream" "web" {{
  config_file  = "{file}"
  name         = "{name}"
  servers      = [for c in docker_service.web.containers : "127.0.0.1:${{8000 + c.number}}"]
  max_fails    = 3
  fail_timeout = "30s"
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

/// Scale 4 → 2: nginx is reloaded with an upstream without containers 3 and
/// 4 before Docker kills either; scale 2 → 3: container 3 has started before
/// the first reload whose upstream lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_drops_containers_before_removal_and_adds_them_after_start() {
    let Some(host) = docker::daemon() else { return };
    let Some(nginx) = servers::Nginx::start("docker-order") else { return };
    let d = docker::client(host);
    let proj = docker::project("order");
    let wrapper = docker::reload_recorder(&nginx.prefix, &nginx.upstream_file);
    let dir = TestDir::new(&upstream_hcl(&proj, &nginx, &wrapper));
    apply(&dir, host, "4 containers + upstream", &["--var", "replicas=4"]);
    let up = nginx.upstream_text();
    for n in 1..=4 {
        assert!(up.contains(&format!("127.0.0.1:{}", 8000 + n)), "{up}");
    }

    // Scale down: the plan says the upstream changes, then apply.
    let plan = run(&dir, host, &["plan", "--var", "replicas=2"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains("nginx_upstream.web"), "{}", plan.stdout());
    eprintln!("scale-down plan:\n{}", plan.stdout());
    docker::clear_reloads(&nginx.prefix);
    let since = docker::now() - 1;
    apply(&dir, host, "scale 4 → 2 behind nginx", &["--var", "replicas=2"]);
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;
    let reloads = docker::reloads(&nginx.prefix);
    let gone: Vec<String> = vec![format!("{proj}-web-3"), format!("{proj}-web-4")];
    let first_removal = events
        .iter()
        .filter(|e| gone.contains(&e.name) && matches!(e.action.as_str(), "kill" | "stop" | "die" | "destroy"))
        .map(|e| e.at)
        .fold(f64::MAX, f64::min);
    assert!(first_removal < f64::MAX, "no removal of containers 3 and 4 in {events:?}");
    let dropped = reloads
        .iter()
        .find(|r| r.exit == 0 && !r.lists("127.0.0.1:8003") && !r.lists("127.0.0.1:8004"))
        .unwrap_or_else(|| panic!("no reload without containers 3 and 4: {reloads:?}"));
    assert!(dropped.lists("127.0.0.1:8001") && dropped.lists("127.0.0.1:8002"), "{}", dropped.text);
    eprintln!("MEASURE scale-down: reload done {:.3} s before the first kill of container 3/4", first_removal - dropped.after);
    assert!(dropped.after < first_removal, "nginx reloaded at {} without 3/4, but Docker removed them from {first_removal}", dropped.after);
    assert_eq!(names(&docker::containers(&d, &proj, "web").await), expected_names(&proj, 2));

    // Scale up: container 3 runs before nginx is told about it.
    docker::clear_reloads(&nginx.prefix);
    let since = docker::now() - 1;
    apply(&dir, host, "scale 2 → 3 behind nginx", &["--var", "replicas=3"]);
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;
    let reloads = docker::reloads(&nginx.prefix);
    let started = events
        .iter()
        .find(|e| e.name == format!("{proj}-web-3") && e.action == "start")
        .unwrap_or_else(|| panic!("container 3 never started: {events:?}"))
        .at;
    let added = reloads.iter().find(|r| r.lists("127.0.0.1:8003")).unwrap_or_else(|| panic!("no reload lists container 3: {reloads:?}"));
    eprintln!("MEASURE scale-up: container 3 started {:.3} s before the reload listing it", added.before - started);
    assert!(started < added.before, "container 3 started at {started}, listed by a reload begun at {}", added.before);
    assert!(reloads.iter().filter(|r| r.before < started).all(|r| !r.lists("127.0.0.1:8003")), "{reloads:?}");
    docker::cleanup(&d, &proj).await;
}

/// Recreate of 4 containers at `max_unavailable = 2` behind the upstream:
/// two batches, each drained on its own — both containers of a batch are
/// marked `down` in a reload before Docker stops either, never more than 2
/// are out at once, and both are back before the next batch stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreate_drains_each_batch_of_containers_from_the_upstream() {
    let Some(host) = docker::daemon() else { return };
    let Some(nginx) = servers::Nginx::start("docker-batches") else { return };
    let d = docker::client(host);
    let proj = docker::project("batches");
    let wrapper = docker::reload_recorder(&nginx.prefix, &nginx.upstream_file);
    let dir = TestDir::new(&upstream_hcl_with(&proj, &nginx, &wrapper, "  rollout {\n    max_unavailable = 2\n  }\n"));
    apply(&dir, host, "4 containers + upstream", &["--var", "replicas=4"]);

    let plan = run(&dir, host, &["plan", "--var", "replicas=4", "--var", "sleep=3601"]);
    plan.assert_code(0);
    let out = plan.stdout();
    for (n, pair) in [(1, (1, 2)), (2, (3, 4))] {
        let line = format!(
            "docker_service.web batch {n}/2 (max_unavailable = 2): drain {proj}-web-{}, {proj}-web-{} from nginx_upstream.web",
            pair.0, pair.1
        );
        assert!(out.contains(&line), "the plan shows batch {n} ({line:?}):\n{out}");
    }
    docker::clear_reloads(&nginx.prefix);
    let since = docker::now() - 1;
    let started = std::time::Instant::now();
    apply(&dir, host, "recreate behind nginx", &["--var", "replicas=4", "--var", "sleep=3601"]);
    let took = started.elapsed();
    let events = docker::events(&d, &proj, since, docker::now() + 1).await;
    let reloads = docker::reloads(&nginx.prefix);
    let addr = |n: i32| format!("127.0.0.1:{}", 8000 + n);
    let first_stop = |n: i32| {
        events
            .iter()
            .filter(|e| e.name == format!("{proj}-web-{n}") && matches!(e.action.as_str(), "kill" | "stop" | "die"))
            .map(|e| e.at)
            .fold(f64::MAX, f64::min)
    };
    for r in reloads.iter().filter(|r| r.exit == 0) {
        let out_of_rotation = (1..=4).filter(|n| !r.lists(&addr(*n))).count();
        assert!(out_of_rotation <= 2, "a reload has {out_of_rotation} containers out:\n{}", r.text);
    }
    for (batch, next) in [((1, 2), Some((3, 4))), ((3, 4), None)] {
        let stop = first_stop(batch.0).min(first_stop(batch.1));
        assert!(stop < f64::MAX, "batch {batch:?} was never stopped: {events:?}");
        let drained = reloads
            .iter()
            .rfind(|r| r.exit == 0 && r.after < stop)
            .unwrap_or_else(|| panic!("no reload before batch {batch:?} stopped: {reloads:?}"));
        assert!(
            !drained.lists(&addr(batch.0)) && !drained.lists(&addr(batch.1)),
            "batch {batch:?} still in rotation when stopped:\n{}",
            drained.text
        );
        if let Some(next) = next {
            let next_stop = first_stop(next.0).min(first_stop(next.1));
            let before_next = reloads.iter().rfind(|r| r.exit == 0 && r.after < next_stop).expect("a reload before the next batch");
            assert!(before_next.text.matches(" down;").count() == 2, "only the next batch is out:\n{}", before_next.text);
            assert!(
                before_next.lists(&addr(batch.0)) && before_next.lists(&addr(batch.1)),
                "batch {batch:?} is not back before the next stops:\n{}",
                before_next.text
            );
        }
    }
    let last = reloads.last().expect("reloads");
    assert!((1..=4).all(|n| last.lists(&addr(n))), "all back at the end:\n{}", last.text);
    eprintln!("MEASURE recreate of 4 at max_unavailable = 2 behind nginx: {took:.2?}, {} reloads", reloads.len());
    docker::cleanup(&d, &proj).await;
}
