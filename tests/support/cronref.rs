//! `cronref`, the robfig/cron v3.0.1 reference program (see
//! `scripts/servers/cronref/main.go`), built and cached by
//! `scripts/servers/cronref.sh install`, or taken from `CRONREF_BIN`.
//!
//! Declare it with `#[path = "support/cronref.rs"] mod cronref;`. Without the
//! binary the tests skip, except under `CI=true`, where they fail and say
//! why. It runs a local process and opens no network.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The reference binary and what it reports about itself.
pub struct CronRef {
    pub bin: PathBuf,
    /// The IANA release of the tzdata it reads (Go's embedded data).
    pub tzdata: String,
    /// `version` output, one `KEY VALUE` per line.
    pub version: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn find() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("CRONREF_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let script = repo().join("scripts/servers/cronref.sh");
    let out = Command::new("bash").arg(&script).arg("install").output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("cronref.sh install failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let out = Command::new("bash").arg(&script).arg("path").output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn start() -> Result<CronRef, String> {
    let bin = find()?;
    let version = run(&bin, &["version"], "")?;
    let tzdata = version.lines().find_map(|l| l.strip_prefix("tzdata ")).unwrap_or("unknown").to_string();
    Ok(CronRef { bin, tzdata, version })
}

/// The reference, or `None` when the test should be skipped.
pub fn reference() -> Option<CronRef> {
    match start() {
        Ok(r) => Some(r),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("cronref is required under CI=true: {why}"),
        Err(why) => {
            eprintln!("skipping: cronref is not available ({why})");
            None
        }
    }
}

impl CronRef {
    /// `cronref next N` over `EXPR\tTZ\tRFC3339` lines: one answer line each.
    pub fn next(&self, n: usize, lines: &[String]) -> Vec<String> {
        let out = run(&self.bin, &["next", &n.to_string()], &lines.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        let answers: Vec<String> = out.lines().map(str::to_string).collect();
        assert_eq!(answers.len(), lines.len(), "cronref answered {} lines for {}", answers.len(), lines.len());
        answers
    }

    /// `cronref next N` over one line, in a process of its own that is
    /// killed after `limit`: `None` when it did not answer by then (robfig's
    /// `Next` loops forever on some schedules).
    pub fn next_within(&self, n: usize, line: &str, limit: Duration) -> Option<String> {
        let mut child = Command::new(&self.bin)
            .args(["next", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(format!("{line}\n").as_bytes()).expect("write to cronref");
        drop(input);
        let deadline = Instant::now() + limit;
        while child.try_wait().expect("wait for cronref").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read cronref");
        Some(out.trim_end().to_string())
    }

    /// `cronref zones FROM TO`: per zone, its offset at `from` and every
    /// offset change in `[from, to)` as `(unix, offset)`; `None` when the
    /// reference does not know the zone.
    pub fn zones(&self, zones: &[&str], from: i64, to: i64) -> Vec<Option<(i64, Vec<(i64, i64)>)>> {
        let out = run(&self.bin, &["zones", &from.to_string(), &to.to_string()], &zones.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        out.lines()
            .map(|line| {
                let mut fields = line.split('\t').skip(1);
                let first: i64 = fields.next()?.parse().ok()?;
                let changes = fields
                    .map(|f| {
                        let (t, o) = f.split_once(':').expect("UNIX:OFFSET");
                        (t.parse().expect("unix"), o.parse().expect("offset"))
                    })
                    .collect();
                Some((first, changes))
            })
            .collect()
    }
}

fn run(bin: &PathBuf, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let mut input = child.stdin.take().expect("stdin");
    let text = format!("{stdin}\n");
    // Write from another thread: the answers fill the pipe meanwhile.
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("cronref: {e}"))?;
    writer.join().expect("writer thread").map_err(|e| format!("writing to cronref: {e}"))?;
    if !out.status.success() {
        return Err(format!("cronref {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
