//! The `docker` provider against a real dockerd on a unix socket: scaling,
//! live limit updates, one-at-a-time recreation, adoption of a stack that
//! `docker compose` would have started, out-of-band removal, validation and
//! the unreachable-daemon error, through the `Provider` trait as the engine
//! uses it.
//!
//! The daemon is started by `scripts/servers/dockerd.sh start` (installing
//! docker.io and busybox-static when missing; always `--bridge=none
//! --iptables=false`) and the image `himaplan/busybox:1` by `dockerd.sh
//! image`; the daemon is left running for the next run (`dockerd.sh stop`
//! ends it). Each test uses its own compose project, so tests may run in
//! parallel. Without dockerd the tests skip, except under `CI=true`, where
//! they fail and say why. Containers use network_mode "none": nothing here
//! sends traffic anywhere.

use bollard::Docker;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use futures::StreamExt;
use himaplan::providers::docker::DockerProvider;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, Provider, ProviderError, ProviderErrorKind, ReadItem, ReadRequest, ReadResponse,
};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const IMAGE: &str = "himaplan/busybox:1";
const LINEAGE: &str = "lineage-docker-test";

// ---------------------------------------------------------------------------
// The daemon

// The daemon is started once per test binary by the shared starter.
#[path = "support/docker.rs"]
#[allow(dead_code, reason = "this binary uses only the daemon starter and the compose helpers")]
mod support_docker;
use support_docker::{DockerCounter, daemon, request_key};

// ---------------------------------------------------------------------------
// Helpers

async fn provider(host: &str) -> DockerProvider {
    let p = DockerProvider::new();
    p.configure(&Value::Map(ValueMap::from([("host".to_string(), Value::from(host))]))).await.expect("configure");
    p
}

fn raw(host: &str) -> Docker {
    Docker::connect_with_host(host).expect("bollard client")
}

/// A fresh compose project name per test (runs do not collide either).
fn project(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t{}{}-{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn addr(s: &str) -> InstanceAddr {
    s.parse().expect("address")
}

fn strings(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::from(*s)).collect())
}

fn planned(project: &str, replicas: i64, extra: &[(&str, Value)]) -> Value {
    let mut m = ValueMap::from([
        ("project".to_string(), Value::from(project)),
        ("service".to_string(), Value::from("worker")),
        ("replicas".to_string(), Value::from(replicas as f64)),
        ("image".to_string(), Value::from(IMAGE)),
        ("command".to_string(), strings(&["sleep", "3600"])),
        ("env".to_string(), Value::Map(ValueMap::new())),
        ("labels".to_string(), Value::Map(ValueMap::new())),
        ("network_mode".to_string(), Value::from("none")),
    ]);
    for (k, v) in extra {
        m.insert(k.to_string(), v.clone());
    }
    Value::Map(m)
}

async fn apply(p: &DockerProvider, action: ApplyAction, prior: &Value, planned: Value) -> Result<Value, ProviderError> {
    p.apply(ApplyRequest {
        rollout: Default::default(),
        rtype: "docker_service".into(),
        addr: addr("docker_service.worker"),
        action,
        prior: prior.clone(),
        planned,
        changed: vec![],
        lineage: LINEAGE.into(),
        token: (action == ApplyAction::Create).then(|| "tok-1".to_string()),
        part: None,
    })
    .await
}

async fn read(p: &DockerProvider, priors: &[&Value]) -> ReadResponse {
    p.read(ReadRequest {
        rtype: "docker_service".into(),
        lineage: LINEAGE.into(),
        items: priors.iter().map(|prior| ReadItem::new(addr("docker_service.worker"), (*prior).clone())).collect(),
    })
    .await
    .expect("read")
}

/// `(number, name, id)` of the reported containers, in reported order.
fn containers(v: &Value) -> Vec<(i64, String, String)> {
    v.get("containers")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            (c.get("number").and_then(Value::as_i64).unwrap_or(-1), s("name"), s("id"))
        })
        .collect()
}

fn replicas(v: &Value) -> i64 {
    v.get("replicas").and_then(Value::as_i64).unwrap_or(-1)
}

/// Removes every container of the project (test cleanup).
async fn cleanup(docker: &Docker, project: &str) {
    let filters = HashMap::from([("label", vec![format!("com.docker.compose.project={project}")])]);
    let list =
        docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build())).await.unwrap_or_default();
    for c in list {
        if let Some(id) = c.id {
            let _ = docker.remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
        }
    }
}

/// Running containers of the project's `worker` service.
async fn running(docker: &Docker, project: &str) -> usize {
    let filters =
        HashMap::from([("label", vec![format!("com.docker.compose.project={project}"), "com.docker.compose.service=worker".to_string()])]);
    docker.list_containers(Some(ListContainersOptionsBuilder::new().filters(&filters).build())).await.map(|l| l.len()).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Scenarios

/// Scaling 1 → 4 → 2 creates PROJECT-worker-1..4 and then removes 4 before 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_one_to_four_to_two_removes_highest_first() {
    let Some(host) = daemon() else { return };
    let p = provider(host).await;
    let docker = raw(host);
    let proj = project("scale");
    let one = apply(&p, ApplyAction::Create, &Value::Null, planned(&proj, 1, &[])).await.expect("create");
    assert_eq!(replicas(&one), 1);
    assert_eq!(one.get("id").and_then(Value::as_str), Some(format!("{proj}/worker").as_str()));

    let started = Instant::now();
    let four = apply(&p, ApplyAction::Update, &one, planned(&proj, 4, &[])).await.expect("scale up");
    let took = started.elapsed();
    eprintln!("MEASURE scale 1→4 apply: {} ms", took.as_millis());
    let names: Vec<String> = containers(&four).into_iter().map(|(_, n, _)| n).collect();
    let want: Vec<String> = (1..=4).map(|n| format!("{proj}-worker-{n}")).collect();
    assert_eq!(names, want);
    assert_eq!(containers(&four)[0].2, containers(&one)[0].2, "container 1 was kept");
    assert_eq!(running(&docker, &proj).await, 4);
    for c in four.get("containers").and_then(Value::as_list).unwrap_or_default() {
        assert_eq!(c.get("ip").and_then(Value::as_str), Some(""), "no address under network_mode none");
    }

    let since = (chrono::Utc::now().timestamp() - 1).to_string();
    let two = apply(&p, ApplyAction::Update, &four, planned(&proj, 2, &[])).await.expect("scale down");
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let names: Vec<String> = containers(&two).into_iter().map(|(_, n, _)| n).collect();
    assert_eq!(names, vec![format!("{proj}-worker-1"), format!("{proj}-worker-2")]);
    let filters = HashMap::from([
        ("type", vec!["container".to_string()]),
        ("event", vec!["destroy".to_string()]),
        ("label", vec![format!("com.docker.compose.project={proj}")]),
    ]);
    let events: Vec<String> = docker
        .events(Some(EventsOptionsBuilder::new().since(&since).until(&until).filters(&filters).build()))
        .filter_map(|e| async move { e.ok()?.actor?.attributes?.get("name").cloned() })
        .collect()
        .await;
    assert_eq!(events, vec![format!("{proj}-worker-4"), format!("{proj}-worker-3")]);

    apply(&p, ApplyAction::Delete, &two, Value::Null).await.expect("delete");
    assert!(read(&p, &[&two]).await.current[0].is_none());
    cleanup(&docker, &proj).await;
}

/// Raising cpus and memory on four containers is a live update: the daemon
/// reports the new NanoCpus and Memory, and no container restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_change_live_without_restart() {
    let Some(host) = daemon() else { return };
    let p = provider(host).await;
    let docker = raw(host);
    let proj = project("limits");
    let small = [("cpus", Value::from(0.5)), ("memory", Value::from("64M"))];
    let before = apply(&p, ApplyAction::Create, &Value::Null, planned(&proj, 4, &small)).await.expect("create");
    let mut started_at = Vec::new();
    for (_, _, id) in containers(&before) {
        let i = docker.inspect_container(&id, None).await.expect("inspect");
        assert_eq!(i.host_config.as_ref().and_then(|h| h.memory), Some(64 << 20));
        started_at.push(i.state.and_then(|s| s.started_at).unwrap_or_default());
    }

    let big = [("cpus", Value::from(1.5)), ("memory", Value::from("256MB"))];
    let t = Instant::now();
    let after = apply(&p, ApplyAction::Update, &before, planned(&proj, 4, &big)).await.expect("update");
    eprintln!("MEASURE live limits update on 4 containers: {} ms", t.elapsed().as_millis());
    assert_eq!(after.get("memory").and_then(Value::as_str), Some("256MB"), "the configured spelling is kept");
    assert_eq!(after.get("cpus").and_then(Value::as_f64), Some(1.5));
    assert_eq!(containers(&after), containers(&before), "same containers, same ids");
    for ((_, _, id), was) in containers(&after).iter().zip(&started_at) {
        let i = docker.inspect_container(id, None).await.expect("inspect");
        let h = i.host_config.expect("host config");
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.memory, Some(256 << 20));
        assert_eq!(h.memory_swap, Some(512 << 20));
        let s = i.state.expect("state");
        assert_eq!(s.running, Some(true));
        assert_eq!(s.started_at.as_ref(), Some(was), "container {id} restarted");
    }
    // Refresh agrees with what apply returned: no drift.
    let again = read(&p, &[&after]).await.current.remove(0).expect("found");
    assert_eq!(again, after);
    cleanup(&docker, &proj).await;
}

/// Changing the command recreates every container (new ids, same names),
/// one at a time: polling the daemon never sees more than one missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_change_recreates_one_at_a_time() {
    let Some(host) = daemon() else { return };
    let p = provider(host).await;
    let docker = raw(host);
    let proj = project("recreate");
    let before = apply(&p, ApplyAction::Create, &Value::Null, planned(&proj, 3, &[])).await.expect("create");

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (docker, proj, done) = (docker.clone(), proj.clone(), done.clone());
        tokio::spawn(async move {
            let mut fewest = usize::MAX;
            while !done.load(Ordering::Relaxed) {
                fewest = fewest.min(running(&docker, &proj).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            fewest
        })
    };
    let t = Instant::now();
    let changed = [("command", strings(&["sleep", "3601"])), ("env", Value::Map(ValueMap::from([("MODE".to_string(), Value::from("b"))])))];
    let after = apply(&p, ApplyAction::Update, &before, planned(&proj, 3, &changed)).await.expect("update");
    done.store(true, Ordering::Relaxed);
    let fewest = poller.await.expect("poller");
    eprintln!("MEASURE recreate of 3 containers: {} ms (fewest running seen: {fewest})", t.elapsed().as_millis());
    assert!(fewest >= 2, "more than one container was down at once (fewest running: {fewest})");
    let (b, a) = (containers(&before), containers(&after));
    assert_eq!(a.iter().map(|c| &c.1).collect::<Vec<_>>(), b.iter().map(|c| &c.1).collect::<Vec<_>>());
    for (old, new) in b.iter().zip(&a) {
        assert_ne!(old.2, new.2, "{} was not recreated", old.1);
    }
    assert_eq!(after.get("command"), Some(&strings(&["sleep", "3601"])));
    assert_eq!(after.get("env").and_then(|e| e.get("MODE")).and_then(Value::as_str), Some("b"));
    let i = docker.inspect_container(&a[0].2, None).await.expect("inspect");
    let labels = i.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("himaplan.io/address").map(String::as_str), Some("docker_service.worker"));
    assert_eq!(labels.get("himaplan.io/lineage").map(String::as_str), Some(LINEAGE));
    assert_eq!(labels.get("com.docker.compose.oneoff").map(String::as_str), Some("False"));
    cleanup(&docker, &proj).await;
}

/// A stack started by the real `docker compose up` (compose labels and
/// names, image env merged in) is read with no spurious env or labels, and a
/// replicas change adopts it: containers 1-2 are kept, 3 is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_stack_is_read_and_adopted() {
    let Some(host) = daemon() else { return };
    let p = provider(host).await;
    let docker = raw(host);
    let Some(bin) = support_docker::compose_bin() else { return };
    let proj = project("compose");
    let dir = tempfile::tempdir().expect("tempdir");
    // Never a bridge: network_mode none, as every compose file here.
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!(
            "services:\n  worker:\n    image: {IMAGE}\n    pull_policy: never\n    network_mode: none\n    command: [\"sleep\", \"3600\"]\n    environment:\n      QUEUE: default\n    labels:\n      tier: batch\n"
        ),
    )
    .expect("write compose file");
    let networks_before = support_docker::networks(&docker).await;
    support_docker::compose(bin, host, dir.path(), &proj, &["up", "-d", "--scale", "worker=2"]);
    let ids: Vec<String> = support_docker::containers(&docker, &proj, "worker").await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 2);
    // A `docker compose run` container is not a replica.
    support_docker::compose(bin, host, dir.path(), &proj, &["run", "-d", "--no-deps", "worker", "sleep", "600"]);
    let oneoff_id = support_docker::containers(&docker, &proj, "worker")
        .await
        .into_iter()
        .find(|c| c.labels.get("com.docker.compose.oneoff").map(String::as_str) == Some("True"))
        .map(|c| c.id)
        .expect("the compose run container");
    let prior =
        Value::Map(ValueMap::from([("project".to_string(), Value::from(proj.as_str())), ("service".to_string(), Value::from("worker"))]));
    let found = read(&p, &[&prior]).await.current.remove(0).expect("compose stack found");
    assert_eq!(replicas(&found), 2);
    assert_eq!(found.get("env"), Some(&Value::Map(ValueMap::from([("QUEUE".to_string(), Value::from("default"))]))));
    assert_eq!(found.get("labels"), Some(&Value::Map(ValueMap::from([("tier".to_string(), Value::from("batch"))]))));
    assert_eq!(found.get("command"), Some(&strings(&["sleep", "3600"])));
    assert_eq!(found.get("network_mode").and_then(Value::as_str), Some("none"));
    assert_eq!(found.get("memory"), Some(&Value::Null));

    let same_config = [
        ("env", Value::Map(ValueMap::from([("QUEUE".to_string(), Value::from("default"))]))),
        ("labels", Value::Map(ValueMap::from([("tier".to_string(), Value::from("batch"))]))),
    ];
    let adopted = apply(&p, ApplyAction::Update, &found, planned(&proj, 3, &same_config)).await.expect("adopt");
    let got = containers(&adopted);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].2, ids[0], "compose container 1 adopted, not recreated");
    assert_eq!(got[1].2, ids[1], "compose container 2 adopted, not recreated");
    assert_eq!(got[2].1, format!("{proj}-worker-3"));
    assert!(docker.inspect_container(&oneoff_id, None).await.is_ok(), "the oneoff container was left alone");
    cleanup(&docker, &proj).await;
    assert_eq!(support_docker::networks(&docker).await, networks_before, "a network was created");
}

/// A container removed behind himaplan's back shows as one replica fewer;
/// the next apply fills the gap; an unrequested service of the lineage is
/// reported in `others` with its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_removal_is_drift_and_strays_are_others() {
    let Some(host) = daemon() else { return };
    let p = provider(host).await;
    let docker = raw(host);
    let proj = project("drift");
    let created = apply(&p, ApplyAction::Create, &Value::Null, planned(&proj, 3, &[])).await.expect("create");
    let victim = containers(&created)[1].2.clone();
    docker.remove_container(&victim, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await.expect("remove");
    let stray_proj = project("stray");
    let stray = apply(&p, ApplyAction::Create, &Value::Null, planned(&stray_proj, 1, &[])).await.expect("stray");

    let resp = read(&p, &[&created]).await;
    let now = resp.current[0].clone().expect("found");
    assert_eq!(replicas(&now), 2);
    assert_eq!(containers(&now).iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 3]);
    let other = resp.others.iter().find(|o| o.id == format!("{stray_proj}/worker")).expect("stray reported");
    assert_eq!(other.address.as_ref().map(ToString::to_string).as_deref(), Some("docker_service.worker"));
    assert_eq!(other.token.as_deref(), Some("tok-1"));
    assert!(other.created.ends_with('Z'), "{}", other.created);

    let healed = apply(&p, ApplyAction::Update, &now, planned(&proj, 3, &[])).await.expect("heal");
    assert_eq!(containers(&healed).iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    apply(&p, ApplyAction::Delete, &stray, Value::Null).await.expect("delete stray");
    cleanup(&docker, &proj).await;
    cleanup(&docker, &stray_proj).await;
}

/// A refresh asks the daemon for its containers once, whatever the number
/// of services and projects (it also serves finding the lineage's other
/// services), then inspects each container and each image once; it made
/// one list per project plus one for the lineage before (issue 17).
#[test]
fn a_refresh_lists_the_daemon_once_and_inspects_each_container_once() {
    let Some(host) = daemon() else { return };
    let counter = DockerCounter::start(host);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (one, two) = (project("count-a"), project("count-b"));
    let counts = runtime.block_on(async {
        let p = provider(host).await;
        let a = apply(&p, ApplyAction::Create, &Value::Null, planned(&one, 3, &[])).await.expect("create a");
        let b = apply(&p, ApplyAction::Create, &Value::Null, planned(&two, 2, &[])).await.expect("create b");
        let counted = provider(&counter.host).await;
        counter.take();
        let resp = counted
            .read(ReadRequest {
                rtype: "docker_service".into(),
                // A lineage of its own: the other tests' services are not its strays.
                lineage: "lineage-of-the-counting-test".into(),
                items: [&a, &b].iter().map(|prior| ReadItem::new(addr("docker_service.worker"), (*prior).clone())).collect(),
            })
            .await
            .expect("read");
        assert_eq!(resp.current.iter().map(|c| c.as_ref().map(replicas)).collect::<Vec<_>>(), vec![Some(3), Some(2)]);
        assert!(resp.others.is_empty(), "{:?}", resp.others);
        let counts = counter.take();
        cleanup(&raw(host), &one).await;
        cleanup(&raw(host), &two).await;
        counts
    });
    let count = |key: &str| counts.get(key).copied().unwrap_or(0);
    assert_eq!(count("GET containers/json"), 1, "{counts:?}");
    assert_eq!(count("GET containers/{id}/json"), 5, "{counts:?}");
    assert_eq!(count("GET images/{id}/json"), 1, "{counts:?}");
}

#[test]
fn request_lines_are_counted_by_their_folded_path() {
    let key = |line: &str| request_key(line.as_bytes());
    assert_eq!(key("GET /v1.47/containers/3f9a/json HTTP/1.1\r").as_deref(), Some("GET containers/{id}/json"));
    assert_eq!(key("GET /v1.47/containers/json?all=true HTTP/1.1\r").as_deref(), Some("GET containers/json"));
    assert_eq!(key("{\"Image\":\"x\"}POST /v1.47/containers/ab/start HTTP/1.1\r").as_deref(), Some("POST containers/{id}/start"));
    assert_eq!(key("DELETE /v1.47/containers/ab HTTP/1.1\r").as_deref(), Some("DELETE containers/{id}"));
    assert_eq!(key("GET /v1.47/images/himaplan/busybox:1/json HTTP/1.1\r").as_deref(), Some("GET images/{id}/json"));
    assert_eq!(key("Content-Type: application/json\r"), None);
}

/// validate rejects a memory size with an unknown unit and negative replicas,
/// naming the attributes; it needs no daemon.
#[test]
fn validate_rejects_bad_memory_unit_and_negative_replicas() {
    let p = DockerProvider::new();
    let config = planned("erp", -1, &[("memory", Value::from("8X"))]);
    let problems = p.validate("docker_service", &config);
    let attrs: Vec<&str> = problems.iter().filter_map(|p| p.attribute.as_deref()).collect();
    assert_eq!(attrs, vec!["replicas", "memory"], "{problems:?}");
    assert!(problems[1].message.contains("8X"), "{}", problems[1].message);
    assert!(p.validate("docker_service", &planned("erp", 2, &[("memory", Value::from("8G"))])).is_empty());
}

/// An unreachable daemon fails configure with a permanent error that names
/// the address and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_daemon_gives_a_clear_error() {
    let host = "unix:///tmp/himaplan-no-such-dockerd.sock";
    let p = DockerProvider::new();
    let err = p.configure(&Value::Map(ValueMap::from([("host".to_string(), Value::from(host))]))).await.expect_err("no daemon there");
    assert_eq!(err.kind(), ProviderErrorKind::Other, "expected a permanent error, got {err:?}");
    let m = err.message();
    assert!(m.starts_with(&format!("cannot reach the Docker daemon at {host}")), "{m}");
    assert!(m.contains("is dockerd running? set DOCKER_HOST or provider \"docker\" { host }"), "{m}");
}
