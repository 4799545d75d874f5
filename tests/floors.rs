//! Measurements, not tests (issue 17, items 6 and 7): how close himaplan's
//! refresh and rollouts come to their floor against real servers. Every
//! test is `#[ignore]`d, so the suite never runs them, and none asserts a
//! timing; they assert only that each run did what it should, and print
//! their figures (BENCHMARKS.md, "Refresh and rollouts against their
//! floor"). Run them in release mode, one at a time:
//!
//! ```sh
//! cargo test --release --test floors -- --ignored --nocapture --test-threads=1
//! ```
//!
//! The floor of an operation is the same unavoidable API calls issued by a
//! minimal client in this process (the same SDK — aws-sdk-ec2, bollard),
//! against the same server in the same run, alternating with himaplan. The
//! EC2 client is built before the clock starts (the proxy closes every
//! connection, so nothing carries over); a Docker floor builds its client
//! inside it, since a kept client would reuse the connections of the
//! previous round where a new process opens its own. Version negotiation
//! is not part of a floor. himaplan is timed as a whole process
//! (start, configuration, state, refresh, plan, apply, state write); the
//! floor only for its calls. EC2 calls of both go through the tests' proxy,
//! which counts them per action (and, for rollouts, holds every
//! `StopInstances` / `StartInstances` answer a fixed time, since moto's
//! transitions are instant); Docker calls of both go through a counting
//! proxy on a socket of its own in front of dockerd.
//!
//! Nothing here sends traffic outside 127.0.0.0/8: moto's instance
//! addresses are never dialled, and containers run with network_mode none.

#[path = "support/docker.rs"]
mod docker;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use aws_sdk_ec2::types::{AttributeValue, Filter, InstanceStateName};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use docker::DockerCounter;
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
use proxy::{FaultPlan, Proxy};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use support::{Run, TestDir};

/// Rounds of each measurement (himaplan and floor alternating).
fn rounds() -> usize {
    std::env::var("HIMAPLAN_FLOOR_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}

/// The held time of every `StopInstances` / `StartInstances` answer in the
/// rollout measurement.
const TRANSITION: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// Figures

/// The figures of one measurement: himaplan's and the floor's wall times
/// per round, and the calls each made in its last round.
#[derive(Default)]
struct Figures {
    what: String,
    himaplan: Vec<Duration>,
    floor: Vec<Duration>,
    himaplan_calls: BTreeMap<String, usize>,
    floor_calls: BTreeMap<String, usize>,
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// API calls, without the counting proxy's `(connections)` entry.
fn call_total(calls: &BTreeMap<String, usize>) -> usize {
    calls.iter().filter(|(k, _)| !k.starts_with('(')).map(|(_, n)| n).sum()
}

fn calls_text(calls: &BTreeMap<String, usize>) -> String {
    let total = call_total(calls);
    let each: Vec<String> = calls.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    format!("{total} ({})", each.join(", "))
}

impl Figures {
    fn new(what: &str) -> Figures {
        Figures { what: what.to_string(), ..Figures::default() }
    }

    /// Prints every round and the summary row of BENCHMARKS.md's table.
    fn print(&self) {
        let ms = |d: &Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
        println!("{}", self.what);
        println!("  himaplan ms per round: {}", self.himaplan.iter().map(ms).collect::<Vec<_>>().join(" "));
        println!("  floor ms per round:    {}", self.floor.iter().map(ms).collect::<Vec<_>>().join(" "));
        println!("  himaplan calls: {}", calls_text(&self.himaplan_calls));
        println!("  floor calls:    {}", calls_text(&self.floor_calls));
        let (h, f) = (median(&self.himaplan), median(&self.floor));
        println!(
            "| {} | {} ms | {} ms | {:.2}× | {} | {} |",
            self.what,
            ms(&h),
            ms(&f),
            h.as_secs_f64() / f.as_secs_f64().max(1e-9),
            call_total(&self.himaplan_calls),
            call_total(&self.floor_calls)
        );
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

// ---------------------------------------------------------------------------
// Shared pieces

fn env_strings<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn himaplan_ok(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let run = support::himaplan_with(dir.path(), args, env, None);
    assert_eq!(run.code(), 0, "himaplan {args:?} failed:\n{}", run.all());
    run
}

/// The ids of `aws_instance.web[0..]` in state, in index order.
fn instance_ids(dir: &TestDir, count: usize) -> Vec<String> {
    (0..count).map(|i| dir.state_attrs(&format!("aws_instance.web[{i}]"))["id"].as_str().expect("an id").to_string()).collect()
}

/// Every instance of the lineage has `itype` (asked of moto itself).
fn assert_all_of_type(m: &moto::Moto, lineage: &str, count: usize, itype: &str) {
    let live = m.lineage_instances(lineage);
    let wrong: Vec<_> = live.iter().filter(|i| i.instance_type != itype || i.state != "running").collect();
    assert_eq!(live.len(), count, "moto runs {} instances of the lineage, want {count}", live.len());
    assert!(wrong.is_empty(), "instances not running as {itype}: {wrong:?}");
}

fn proxy_actions(p: &Proxy) -> BTreeMap<String, usize> {
    let counts = p.counts();
    p.reset_counts();
    counts.actions
}

fn ec2_config(count: usize, rollout: &str) -> String {
    format!(
        r#"variable "itype" {{
  type = string
}}

resource "aws_instance" "web" {{
  count         = {count}
  ami           = "{ami}"
  instance_type = var.itype
  tags = {{
    Name = "web-${{count.index}}"
  }}
  {rollout}
}}
"#,
        ami = moto::AMI
    )
}

/// `count` instances of [`ec2_config`] created by himaplan through a
/// counting proxy in front of moto: the proxy, the environment that points
/// himaplan at it, the directory, the lineage and how long the create took.
struct Ec2Fleet {
    proxy: Proxy,
    env: Vec<(&'static str, String)>,
    dir: TestDir,
    lineage: String,
    created: Duration,
}

impl Ec2Fleet {
    fn create(m: &moto::Moto, count: usize, rollout: &str) -> Ec2Fleet {
        let proxy = Proxy::start(&m.endpoint, FaultPlan::default());
        let env = moto::env_via(&proxy.endpoint);
        let dir = TestDir::new(&ec2_config(count, rollout));
        let (_, created) = timed(|| himaplan_ok(&dir, &["apply", "--auto-approve", "--var", "itype=t3.micro"], &env_strings(&env)));
        let lineage = dir.state()["lineage"].as_str().expect("lineage").to_string();
        Ec2Fleet { proxy, env, dir, lineage, created }
    }

    /// `himaplan ARGS` through the proxy; it must succeed.
    fn himaplan(&self, args: &[&str]) -> Run {
        himaplan_ok(&self.dir, args, &env_strings(&self.env))
    }
}

// ---------------------------------------------------------------------------
// Refresh

/// `plan` with refresh of 1,000 `aws_instance` against one paginated,
/// lineage-filtered `DescribeInstances` issued by a minimal client.
#[test]
#[ignore = "a measurement (BENCHMARKS.md); run in release with --ignored"]
fn refresh_of_1000_instances_against_its_floor() {
    let Some(turn) = moto::turn() else { return };
    let fleet = Ec2Fleet::create(turn.moto, 1000, "");
    println!("created 1,000 instances in {:?}", fleet.created);
    let (proxy, lineage) = (&fleet.proxy, &fleet.lineage);
    let ec2 = moto::ec2_client(&proxy.endpoint);
    let mut figures = Figures::new("plan, refresh of 1,000 aws_instance (moto)");
    proxy.reset_counts();
    for _ in 0..rounds() {
        let (_, t) = timed(|| fleet.himaplan(&["plan", "--detailed-exitcode", "--var", "itype=t3.micro"]));
        figures.himaplan.push(t);
        figures.himaplan_calls = proxy_actions(proxy);
        let (found, t) = timed(|| moto::block_on(describe_lineage(&ec2, lineage)));
        assert_eq!(found, 1000);
        figures.floor.push(t);
        figures.floor_calls = proxy_actions(proxy);
    }
    figures.print();
}

/// The floor of an EC2 refresh: the lineage's instances, paginated at 1,000.
async fn describe_lineage(ec2: &aws_sdk_ec2::Client, lineage: &str) -> usize {
    let filter = Filter::builder().name("tag:himaplan:lineage").values(lineage).build();
    let mut pages = ec2.describe_instances().filters(filter).max_results(1000).into_paginator().send();
    let mut found = 0;
    while let Some(page) = pages.next().await {
        found += page.expect("DescribeInstances").reservations().iter().map(|r| r.instances().len()).sum::<usize>();
    }
    found
}

fn services_config(project: &str, services: usize, replicas: usize, command: &str, rollout: &str) -> String {
    let names: Vec<String> = (1..=services).map(|i| format!("\"s{i:02}\"")).collect();
    format!(
        r#"resource "docker_service" "svc" {{
  for_each     = toset([{names}])
  project      = "{project}"
  service      = each.key
  replicas     = {replicas}
  image        = "{image}"
  command      = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait", "{command}"]
  network_mode = "none"
  {rollout}
}}
"#,
        names = names.join(", "),
        image = docker::IMAGE
    )
}

/// Every container of `project`, running or not.
async fn list_project(docker: &Docker, project: &str) -> Vec<bollard::models::ContainerSummary> {
    let filters = HashMap::from([("label", vec![format!("com.docker.compose.project={project}")])]);
    docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build())).await.expect("list")
}

/// Removes every container of `project` (the measurement's leftovers).
fn remove_project(docker: &Docker, project: &str) {
    moto::block_on(async {
        for c in list_project(docker, project).await {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = docker.remove_container(c.id.as_deref().unwrap_or_default(), Some(options)).await;
        }
    });
}

/// `plan` with refresh of 200 containers in 20 `docker_service`s against a
/// minimal client's list of the project, inspect of every container and of
/// the image.
#[test]
#[ignore = "a measurement (BENCHMARKS.md); run in release with --ignored"]
fn refresh_of_200_containers_against_its_floor() {
    let Some(host) = docker::daemon() else { return };
    let counter = DockerCounter::start(host);
    let project = docker::project("floor-refresh");
    let dir = TestDir::new(&services_config(&project, 20, 10, "a", ""));
    let direct = [("DOCKER_HOST", host)];
    let (_, created) = timed(|| himaplan_ok(&dir, &["apply", "--auto-approve"], &direct));
    println!("created 200 containers in {created:?}");
    let counted = [("DOCKER_HOST", counter.host.as_str())];
    let mut figures = Figures::new("plan, refresh of 200 containers in 20 docker_service (dockerd)");
    let mut unbounded = Vec::new();
    counter.take();
    for _ in 0..rounds() {
        let (_, t) = timed(|| himaplan_ok(&dir, &["plan", "--detailed-exitcode"], &counted));
        figures.himaplan.push(t);
        figures.himaplan_calls = counter.take();
        // The floor at himaplan's bound of inspects in flight (32), and
        // with all 200 at once; the faster one is the floor.
        let (found, t32) = timed(|| moto::block_on(inspect_project(&counter.host, &project, 32)));
        assert_eq!(found, 200);
        figures.floor_calls = counter.take();
        let (_, t_all) = timed(|| moto::block_on(inspect_project(&counter.host, &project, 200)));
        counter.take();
        unbounded.push(t_all);
        figures.floor.push(t32.min(t_all));
    }
    figures.print();
    println!("  floor with all 200 inspects at once, ms: {:?}", unbounded.iter().map(Duration::as_millis).collect::<Vec<_>>());
    remove_project(&docker::client(host), &project);
}

/// The floor of a Docker refresh: one list of the project, every container
/// inspected (`in_flight` at once), the image inspected once, by a new
/// client (no connection kept from an earlier round, as for a new process).
async fn inspect_project(host: &str, project: &str, in_flight: usize) -> usize {
    let docker = &docker::client(host);
    let listed = list_project(docker, project).await;
    let inspected: Vec<_> =
        futures::stream::iter(listed.iter().map(|c| docker.inspect_container(c.id.as_deref().unwrap_or_default(), None)))
            .buffer_unordered(in_flight)
            .try_collect()
            .await
            .expect("inspect");
    if let Some(image) = inspected.first().and_then(|i| i.image.clone()) {
        docker.inspect_image(&image).await.expect("inspect image");
    }
    inspected.len()
}

// ---------------------------------------------------------------------------
// Rollouts

/// A resize of 100 instances at `max_unavailable = 10`, every Stop/Start
/// answer held [`TRANSITION`], against a minimal client that resizes the
/// same instances in the same batches.
#[test]
#[ignore = "a measurement (BENCHMARKS.md); run in release with --ignored"]
fn resize_of_100_instances_against_its_floor() {
    let Some(turn) = moto::turn() else { return };
    let m = turn.moto;
    let fleet = Ec2Fleet::create(m, 100, "rollout {\n    max_unavailable = 10\n  }");
    let (proxy, lineage) = (&fleet.proxy, &fleet.lineage);
    let ids = instance_ids(&fleet.dir, 100);
    let held = [("StopInstances", TRANSITION), ("StartInstances", TRANSITION)];
    proxy.set_plan(FaultPlan { action_delay: held.to_vec(), ..FaultPlan::default() });
    let ec2 = moto::ec2_client(&proxy.endpoint);
    let mut figures =
        Figures::new(&format!("apply, resize of 100 aws_instance at max_unavailable = 10 (moto, Stop/Start held {TRANSITION:?})"));
    let types = ["t3.small", "t3.medium", "t3.large", "t3.xlarge"];
    proxy.reset_counts();
    for round in 0..rounds() {
        let (ours, theirs) = (types[(2 * round) % types.len()], types[(2 * round + 1) % types.len()]);
        let var = format!("itype={ours}");
        let (_, t) = timed(|| fleet.himaplan(&["apply", "--auto-approve", "--var", &var]));
        figures.himaplan.push(t);
        figures.himaplan_calls = proxy_actions(proxy);
        assert_all_of_type(m, lineage, 100, ours);
        let (_, t) = timed(|| {
            moto::block_on(async {
                for batch in ids.chunks(10) {
                    try_join_all(batch.iter().map(|id| resize_floor(&ec2, id, theirs))).await.expect("resize");
                }
            })
        });
        figures.floor.push(t);
        figures.floor_calls = proxy_actions(proxy);
        assert_all_of_type(m, lineage, 100, theirs);
    }
    figures.print();
}

/// The floor of one resize: stop, wait until stopped, modify, start, wait
/// until running; each wait polls at once and then every 100 ms.
async fn resize_floor(ec2: &aws_sdk_ec2::Client, id: &str, itype: &str) -> Result<(), String> {
    ec2.stop_instances().instance_ids(id).send().await.map_err(|e| format!("StopInstances: {e:?}"))?;
    wait_until(ec2, id, InstanceStateName::Stopped).await?;
    ec2.modify_instance_attribute()
        .instance_id(id)
        .instance_type(AttributeValue::builder().value(itype).build())
        .send()
        .await
        .map_err(|e| format!("ModifyInstanceAttribute: {e:?}"))?;
    ec2.start_instances().instance_ids(id).send().await.map_err(|e| format!("StartInstances: {e:?}"))?;
    wait_until(ec2, id, InstanceStateName::Running).await
}

async fn wait_until(ec2: &aws_sdk_ec2::Client, id: &str, want: InstanceStateName) -> Result<(), String> {
    for _ in 0..100 {
        let out = ec2.describe_instances().instance_ids(id).send().await.map_err(|e| format!("DescribeInstances: {e:?}"))?;
        let state = out.reservations().iter().flat_map(|r| r.instances()).find_map(|i| i.state().and_then(|s| s.name()).cloned());
        if state.as_ref() == Some(&want) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{id} never became {want:?}"))
}

/// A recreate of 40 containers at `max_unavailable = 8` (a command change)
/// against a minimal client that stops, removes, creates and starts the
/// same containers in the same batches.
#[test]
#[ignore = "a measurement (BENCHMARKS.md); run in release with --ignored"]
fn recreate_of_40_containers_against_its_floor() {
    let Some(host) = docker::daemon() else { return };
    let counter = DockerCounter::start(host);
    let project = docker::project("floor-recreate");
    let rollout = "rollout {\n    max_unavailable = 8\n  }";
    let dir = TestDir::new(&services_config(&project, 1, 40, "round-0", rollout));
    himaplan_ok(&dir, &["apply", "--auto-approve"], &[("DOCKER_HOST", host)]);
    let counted = [("DOCKER_HOST", counter.host.as_str())];
    let docker = docker::client(&counter.host);
    let mut figures = Figures::new("apply, recreate of 40 containers at max_unavailable = 8 (dockerd)");
    counter.take();
    for round in 1..=rounds() {
        let ours = format!("round-{round}-himaplan");
        dir.write("main.hcl", &services_config(&project, 1, 40, &ours, rollout));
        let (_, t) = timed(|| himaplan_ok(&dir, &["apply", "--auto-approve"], &counted));
        figures.himaplan.push(t);
        figures.himaplan_calls = counter.take();
        assert_eq!(moto::block_on(commands_of(&docker, &project)), vec![ours.clone(); 40]);
        // What the floor recreates is looked up before its clock starts.
        let old = moto::block_on(containers_by_number(&docker, &project));
        counter.take();
        let theirs = format!("round-{round}-floor");
        let (_, t) = timed(|| {
            moto::block_on(async {
                let docker = docker::client(&counter.host);
                for batch in old.chunks(8) {
                    try_join_all(batch.iter().map(|c| recreate_floor(&docker, c, &theirs))).await.expect("recreate");
                }
            })
        });
        figures.floor.push(t);
        figures.floor_calls = counter.take();
        assert_eq!(moto::block_on(commands_of(&docker, &project)), vec![theirs; 40]);
    }
    figures.print();
    remove_project(&docker::client(host), &project);
}

/// The project's containers, inspected, in container-number order.
async fn containers_by_number(docker: &Docker, project: &str) -> Vec<bollard::models::ContainerInspectResponse> {
    let listed = list_project(docker, project).await;
    let mut inspected =
        try_join_all(listed.iter().map(|c| docker.inspect_container(c.id.as_deref().unwrap_or_default(), None))).await.expect("inspect");
    let number = |i: &bollard::models::ContainerInspectResponse| -> i64 {
        let labels = i.config.as_ref().and_then(|c| c.labels.as_ref());
        labels.and_then(|l| l.get("com.docker.compose.container-number")).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    inspected.sort_by_key(number);
    inspected
}

/// The last command argument (the round marker) of every running container.
async fn commands_of(docker: &Docker, project: &str) -> Vec<String> {
    let all = containers_by_number(docker, project).await;
    all.iter()
        .filter(|c| c.state.as_ref().and_then(|s| s.running) == Some(true))
        .map(|c| c.config.as_ref().and_then(|c| c.cmd.as_ref()).and_then(|cmd| cmd.last().cloned()).unwrap_or_default())
        .collect()
}

/// The floor of one container's recreate: stop, remove, create the same
/// container (name, image, labels, environment) with the new command, start.
async fn recreate_floor(docker: &Docker, old: &bollard::models::ContainerInspectResponse, marker: &str) -> Result<(), String> {
    let id = old.id.as_deref().unwrap_or_default();
    let name = old.name.as_deref().unwrap_or_default().trim_start_matches('/');
    let config = old.config.clone().unwrap_or_default();
    let mut cmd = config.cmd.clone().unwrap_or_default();
    if let Some(last) = cmd.last_mut() {
        *last = marker.to_string();
    }
    docker.stop_container(id, Some(StopContainerOptionsBuilder::new().build())).await.map_err(|e| format!("stop: {e}"))?;
    docker.remove_container(id, None).await.map_err(|e| format!("remove: {e}"))?;
    let body = ContainerCreateBody {
        image: config.image,
        cmd: Some(cmd),
        env: config.env,
        labels: config.labels,
        host_config: Some(HostConfig { network_mode: Some("none".to_string()), ..HostConfig::default() }),
        ..ContainerCreateBody::default()
    };
    let created = docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(name).build()), body)
        .await
        .map_err(|e| format!("create: {e}"))?;
    docker.start_container(&created.id, None).await.map_err(|e| format!("start: {e}"))
}
