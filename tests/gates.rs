//! Health-gated EC2 rollouts through the `himaplan` binary (moto): each
//! instance is gated by an HTTP check on its own loopback test server,
//! addressed by the port in its tags (known at plan time), never by
//! moto's private-range address. The test flips a server between healthy
//! and unhealthy and reads what the servers saw and what moto holds.

#[path = "support/moto.rs"]
mod moto;
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use support::TestDir;

/// A loopback `/health/` server: 200 while healthy, else 503; counts probes.
struct Health {
    port: u16,
    healthy: Arc<AtomicBool>,
    probes: Arc<AtomicUsize>,
}

impl Health {
    fn start() -> Health {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (healthy, probes) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicUsize::new(0)));
        let (h, p) = (healthy.clone(), probes.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                p.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let status = if h.load(Ordering::SeqCst) { "200 OK" } else { "503 Service Unavailable" };
                let _ = stream.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
            }
        });
        Health { port, healthy, probes }
    }

    fn probes(&self) -> usize {
        self.probes.load(Ordering::SeqCst)
    }
}

fn config(ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        r#"
variable "instance_type" {{
  type    = string
  default = "t3.small"
}}

resource "aws_instance" "web" {{
  count         = 3
  ami           = "{ami}"
  instance_type = var.instance_type
  tags = {{
    Name        = "web-${{count.index}}"
    health_port = element([{ports}], count.index)
  }}
  rollout {{
    max_unavailable = 1
    health_check {{
      http     = "http://127.0.0.1:${{target.tags.health_port}}/health/"
      interval = "200ms"
      timeout  = "3s"
    }}
  }}
}}
"#,
        ami = moto::AMI,
        ports = ports.join(", ")
    )
}

#[test]
fn an_ec2_resize_waits_for_each_instance_health_and_stops_on_a_failing_one() {
    let Some(moto) = moto::turn() else { return };
    let servers: Vec<Health> = (0..3).map(|_| Health::start()).collect();
    let dir = TestDir::new(&config(&servers.iter().map(|s| s.port).collect::<Vec<_>>()));
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| dir.run_with(args, &env, None);
    run(&["apply", "--auto-approve"]).assert_code(0);
    let ids: Vec<String> =
        (0..3).map(|i| dir.state_attrs(&format!("aws_instance.web[{i}]"))["id"].as_str().expect("id").to_string()).collect();
    let types = || ids.iter().map(|id| moto.instance(id).instance_type).collect::<Vec<_>>();

    let plan = run(&["plan", "--var", "instance_type=t3.medium"]);
    plan.assert_code(0);
    let line = format!(
        "aws_instance.web batch 2/3 (max_unavailable = 1): stop/start aws_instance.web[1] → aws_instance.web[1]: wait until http://127.0.0.1:{}/health/ answers 2xx/3xx, at most 3s",
        servers[1].port
    );
    assert!(plan.stdout().contains(&line), "the plan shows the gate ({line:?}):\n{}", plan.stdout());

    // All healthy: every batch is gated, then the next one starts.
    let started = std::time::Instant::now();
    run(&["apply", "--auto-approve", "--var", "instance_type=t3.medium"]).assert_code(0);
    let healthy_rollout = started.elapsed();
    assert!(
        servers.iter().all(|s| s.probes() >= 1),
        "every instance was probed: {:?}",
        servers.iter().map(Health::probes).collect::<Vec<_>>()
    );
    assert_eq!(types(), ["t3.medium"; 3]);

    // web[1] never becomes healthy: the rollout stops at its batch.
    servers[1].healthy.store(false, Ordering::SeqCst);
    let before = servers[1].probes();
    let failed = run(&["apply", "--auto-approve", "--var", "instance_type=t3.large"]);
    failed.assert_code(1);
    let probed = servers[1].probes() - before;
    assert!(probed >= 2, "the gate waited, probing {probed} time(s)");
    assert!(failed.stderr().contains("aws_instance.web[1] is not healthy"), "{}", failed.stderr());
    assert!(failed.stderr().contains("HTTP 503"), "the error gives the last result: {}", failed.stderr());
    let progress = failed.stdout() + &failed.stderr();
    assert!(progress.contains("aws_instance.web[1]: waiting for health ("), "the wait is shown as it happens:\n{progress}");
    assert_eq!(types(), ["t3.large", "t3.large", "t3.medium"], "the batch after the failing one is not touched");
    let state = dir.state();
    let marked: Vec<&str> = state["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r.get("unhealthy").is_some())
        .map(|r| r["address"].as_str().expect("address"))
        .collect();
    assert_eq!(marked, ["aws_instance.web[1]"], "state records the member that failed its gate");

    // Healthy again: web[1] is gated again before anything else, then web[2] rolls.
    servers[1].healthy.store(true, Ordering::SeqCst);
    let again = run(&["plan", "--var", "instance_type=t3.large"]);
    assert!(again.stdout().contains("health check again aws_instance.web[1]"), "{}", again.stdout());
    run(&["apply", "--auto-approve", "--var", "instance_type=t3.large"]).assert_code(0);
    assert_eq!(types(), ["t3.large"; 3]);
    assert!(!dir.state_text().contains("\"unhealthy\""), "the mark is cleared");
    run(&["plan", "--detailed-exitcode", "--var", "instance_type=t3.large"]).assert_code(0);
    eprintln!("gated rollout: 3 healthy batches in {healthy_rollout:.2?}; the failing gate probed {probed} time(s) before its 3 s timeout");
}
