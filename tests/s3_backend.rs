//! `backend "s3"` ([`S3Store`]) against a real, single-threaded moto on
//! loopback: checksummed round trip, tampered and truncated objects refused,
//! the conditional-PUT lock (fail at once naming the holder, wait, time out,
//! force-unlock by id, release on drop), the If-Match commit that refuses to
//! overwrite newer state, journal replay and cleanup, moving state between
//! stores, 20 rounds of lock contention, and the request count of one run.
//!
//! The server is `scripts/servers/moto.sh serve-single PORT` (werkzeug with
//! `threaded=False`): threaded moto's conditional PUT checks then writes
//! without a lock, so two racing `If-None-Match: *` PUTs could both win
//! there, while real S3's are atomic. A shell watchdog ends the server when
//! this process exits. Without moto the tests skip, except under `CI=true`,
//! where they fail and say why. Must never contact a non-loopback address.

#[path = "support/moto.rs"]
mod moto;

use aws_sdk_s3::primitives::ByteStream;
use himaplan::state_s3::{CHECKSUM_METADATA, S3Store, copy_state, sha256_hex};
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::state::{JournalEntry, LocalStore, ResourceState, State, StateError, StateStore};
use std::io::Write;
use std::time::{Duration, Instant};

const BUCKET: &str = "himaplan-state";
const KEY: &str = "prod/state.json";

/// This binary's moto: single-threaded (see above), and exported to the
/// process environment, from which the store under test builds its client.
const SETUP: moto::Setup = moto::Setup { single_threaded: true, export_env: true };

/// Waits for this test's turn on the reset server and creates an empty state
/// bucket; `None` when the test should be skipped.
async fn turn() -> Option<moto::Turn> {
    let turn = moto::turn_async(SETUP).await?;
    sdk().await.create_bucket().bucket(BUCKET).send().await.expect("state bucket");
    Some(turn)
}

// ---------------------------------------------------------------------------
// Helpers

async fn sdk() -> aws_sdk_s3::Client {
    himaplan::providers::aws::client::connect_s3(None).await
}

async fn store() -> S3Store {
    S3Store::new(BUCKET, KEY, None).await.expect("store")
}

fn addr(s: &str) -> InstanceAddr {
    s.parse().expect("address")
}

fn resource(id: &str) -> ResourceState {
    ResourceState {
        rtype: "himaplan_data".into(),
        provider: "builtin".into(),
        schema_version: 0,
        attributes: serde_json::json!({ "id": id }).into(),
        dependencies: vec![],
        unhealthy: None,
    }
}

fn sample(n: usize) -> State {
    let mut s = State::new_lineage();
    for i in 0..n {
        s.resources.insert(addr(&format!("himaplan_data.r[{i}]")), resource(&format!("r{i}")));
    }
    s
}

async fn object(key: &str) -> Option<(String, Option<String>)> {
    let out = sdk().await.get_object().bucket(BUCKET).key(key).send().await.ok()?;
    let sum = out.metadata().and_then(|m| m.get(CHECKSUM_METADATA)).cloned();
    let bytes = out.body.collect().await.ok()?.into_bytes();
    Some((String::from_utf8_lossy(&bytes).into_owned(), sum))
}

async fn journal_objects() -> usize {
    let out = sdk().await.list_objects_v2().bucket(BUCKET).prefix(format!("{KEY}.journal/")).send().await.expect("list");
    out.contents().len()
}

/// One run's writes as the engine makes them: begin, a batch, commit.
async fn run_once(s: &S3Store, add: &str) -> State {
    let snap = s.read().await.expect("read");
    let mut state = snap.state.clone();
    s.append_journal(&[JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() }]).await.expect("begin");
    s.append_journal(&[JournalEntry::Set { address: addr(add), resource: resource(add), token: None }]).await.expect("set");
    state.resources.insert(addr(add), resource(add));
    state.serial += 1;
    s.commit(&state, snap.text.as_deref()).await.expect("commit");
    state
}

// ---------------------------------------------------------------------------
// Scenarios

/// State written by one store reads back identically from another, carries
/// its checksum, keeps the run-start text as KEY.backup, and a crashed run's
/// journal is replayed by the next read and folded away by its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_checksum_backup_and_journal() {
    let Some(_moto) = turn().await else { return };
    let s = store().await;
    let snap = s.read().await.expect("read missing");
    assert!(!snap.exists && snap.text.is_none());
    let mut state = sample(3);
    state.lineage = snap.state.lineage.clone();
    s.commit(&state, None).await.expect("first commit");
    let (body, sum) = object(KEY).await.expect("state object");
    assert_eq!(sum.as_deref(), Some(sha256_hex(body.as_bytes()).as_str()));
    assert!(object(&format!("{KEY}.backup")).await.is_none(), "no backup without a previous state");

    let other = store().await;
    let snap = other.read().await.expect("read");
    assert!(snap.exists && !snap.journal_replayed);
    assert_eq!(snap.state, state);

    // A run that crashes after journalling leaves objects the next read replays.
    other.append_journal(&[JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() }]).await.expect("begin");
    other.append_journal(&[JournalEntry::Remove { address: addr("himaplan_data.r[0]") }]).await.expect("remove");
    other
        .append_journal(&[JournalEntry::Intent { address: addr("himaplan_data.new"), rtype: "himaplan_data".into(), token: "t9".into() }])
        .await
        .expect("intent");
    assert_eq!(journal_objects().await, 3);
    let next = store().await;
    let snap = next.read().await.expect("read with journal");
    assert!(snap.journal_replayed);
    assert_eq!(snap.state.resources.len(), 2);
    assert_eq!(snap.unfinished_intents.len(), 1);
    let mut recovered = snap.state.clone();
    recovered.serial += 1;
    next.commit(&recovered, snap.text.as_deref()).await.expect("commit");
    assert_eq!(journal_objects().await, 0, "commit folds the journal away");
    assert_eq!(object(&format!("{KEY}.backup")).await.map(|(b, _)| b), snap.text);
    let snap = store().await.read().await.expect("read");
    assert_eq!(snap.state, recovered);
    assert!(!snap.journal_replayed);
}

/// An object whose body no longer matches its checksum (changed, or
/// truncated) is refused with a clear error and the way out, and the read
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_truncated_state_is_refused() {
    let Some(_moto) = turn().await else { return };
    let s = store().await;
    s.read().await.expect("read");
    s.commit(&sample(2), None).await.expect("commit");
    let (good, sum) = object(KEY).await.expect("object");
    let sum = sum.expect("checksum");
    let tampered = good.replace("r1", "rX");
    let truncated = good[..good.len() / 2].to_string();
    for (what, body) in [("tampered", tampered), ("truncated", truncated)] {
        sdk()
            .await
            .put_object()
            .bucket(BUCKET)
            .key(KEY)
            .metadata(CHECKSUM_METADATA, &sum)
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .expect("out-of-band put");
        let err = store().await.read().await.expect_err(what);
        assert!(matches!(err, StateError::Invalid { .. }), "{what}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("checksum mismatch") && msg.contains(&format!("s3://{BUCKET}/{KEY}.backup")), "{what}: {msg}");
        assert_eq!(object(KEY).await.map(|(b, _)| b), Some(body), "{what}: the read must not write");
    }
    // Without the metadata (uploaded by hand) it is refused too.
    sdk().await.put_object().bucket(BUCKET).key(KEY).body(ByteStream::from(good.into_bytes())).send().await.expect("put");
    let err = store().await.read().await.expect_err("no checksum");
    assert!(err.to_string().contains("has no himaplan-sha256 metadata"), "{err}");
}

/// A held lock makes a second run fail at once naming the holder; with a
/// timeout it waits and gets the lock after the release, or times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_fails_naming_holder_waits_and_times_out() {
    let Some(_moto) = turn().await else { return };
    let (a, b) = (store().await, store().await);
    let held = a.lock_s3("apply", Duration::ZERO).await.expect("first lock");
    let err = b.lock("plan", Duration::ZERO).await.err().expect("second lock fails");
    assert!(matches!(&err, StateError::Locked { holder } if holder == held.info()), "{err:?}");
    assert!(err.to_string().contains(&held.info().id), "{err}");

    let err = b.lock("apply", Duration::from_millis(600)).await.err().expect("times out");
    assert!(matches!(&err, StateError::LockTimeout { holder } if holder == held.info()), "{err:?}");

    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        held.release().await.expect("release");
    });
    let start = Instant::now();
    let second = b.lock_s3("apply", Duration::from_secs(10)).await.expect("lock after release");
    assert!(start.elapsed() >= Duration::from_millis(600), "{:?}", start.elapsed());
    releaser.await.expect("releaser");
    let (body, _) = object(&format!("{KEY}.lock")).await.expect("lock object");
    assert!(body.contains(&second.info().id));

    // Dropping the guard releases the lock too.
    drop(second);
    assert!(object(&format!("{KEY}.lock")).await.is_none(), "drop must delete the lock");
}

/// On a current-thread runtime, dropping the guard still deletes the lock
/// before the drop returns.
#[tokio::test(flavor = "current_thread")]
async fn drop_releases_on_a_current_thread_runtime() {
    let Some(_moto) = turn().await else { return };
    let s = store().await;
    let guard = s.lock("apply", Duration::ZERO).await.expect("lock");
    drop(guard);
    assert!(object(&format!("{KEY}.lock")).await.is_none());
    assert!(s.lock("apply", Duration::ZERO).await.is_ok());
}

/// force-unlock with a wrong id is refused; with the right id the lock goes,
/// and the old holder's late release does not delete the next run's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_needs_the_id_and_spares_the_next_lock() {
    let Some(_moto) = turn().await else { return };
    let (a, b) = (store().await, store().await);
    assert!(matches!(a.force_unlock("nothing-held").await, Err(StateError::NoSuchLock { .. })));
    let stale = a.lock_s3("apply", Duration::ZERO).await.expect("lock");
    let err = b.force_unlock("wrong-id").await.expect_err("wrong id");
    assert!(matches!(err, StateError::NoSuchLock { .. }), "{err:?}");
    assert!(object(&format!("{KEY}.lock")).await.is_some(), "a refused force-unlock removed the lock");
    b.force_unlock(&stale.info().id).await.expect("force unlock");
    assert!(object(&format!("{KEY}.lock")).await.is_none());

    let next = b.lock_s3("apply", Duration::ZERO).await.expect("lock after force-unlock");
    stale.release().await.expect("late release is harmless");
    let (body, _) = object(&format!("{KEY}.lock")).await.expect("next run's lock survives");
    assert!(body.contains(&next.info().id));
    next.release().await.expect("release");
}

/// A run whose read is stale (another run committed since) cannot commit:
/// the If-Match write fails with 412 and the newer state stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_with_a_stale_etag_is_refused() {
    let Some(_moto) = turn().await else { return };
    let first = store().await;
    first.read().await.expect("read");
    first.commit(&sample(1), None).await.expect("seed");

    let (slow, fast) = (store().await, store().await);
    let slow_snap = slow.read().await.expect("slow read");
    let newer = run_once(&fast, "himaplan_data.fast").await;
    let (newer_body, _) = object(KEY).await.expect("newer state");

    let mut mine = slow_snap.state.clone();
    mine.resources.insert(addr("himaplan_data.slow"), resource("slow"));
    mine.serial += 1;
    let err = slow.commit(&mine, slow_snap.text.as_deref()).await.expect_err("stale commit");
    let msg = err.to_string();
    assert!(msg.contains("412") && msg.contains("nothing was overwritten"), "{msg}");
    assert_eq!(object(KEY).await.map(|(b, _)| b), Some(newer_body));
    assert_eq!(store().await.read().await.expect("read").state, newer);

    // Two commits on a missing state: the second's If-None-Match fails.
    sdk().await.delete_object().bucket(BUCKET).key(KEY).send().await.expect("delete");
    let (x, y) = (store().await, store().await);
    x.read().await.expect("read");
    y.read().await.expect("read");
    x.commit(&sample(1), None).await.expect("x creates");
    assert!(y.commit(&sample(2), None).await.is_err(), "y must not overwrite x's new state");
}

/// State moves between a local file and S3 both ways; a state of another
/// lineage is not overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_state_pushes_and_pulls() {
    let Some(_moto) = turn().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let local = LocalStore::new(dir.path().join("state.json"));
    local.read().await.expect("read");
    let state = sample(4);
    local.commit(&state, None).await.expect("local commit");
    let remote = store().await;
    assert!(copy_state(&local, &remote).await.expect("push"));
    assert_eq!(remote.read().await.expect("read").state, state);
    assert!(!copy_state(&local, &remote).await.expect("second push is a no-op"));

    let updated = run_once(&store().await, "himaplan_data.remote").await;
    assert!(copy_state(&store().await, &local).await.expect("pull"));
    assert_eq!(local.read().await.expect("read").state, updated);

    let foreign = LocalStore::new(dir.path().join("foreign.json"));
    foreign.commit(&sample(1), None).await.expect("foreign");
    let err = copy_state(&foreign, &store().await).await.expect_err("other lineage");
    assert!(err.to_string().contains("lineage"), "{err}");
    assert_eq!(store().await.read().await.expect("read").state, updated);
}

/// 20 rounds of two stores taking the lock at the same moment: each round
/// exactly one wins and the other is told who holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_rounds_of_contention_have_one_winner_each() {
    let Some(_moto) = turn().await else { return };
    let (a, b) = (std::sync::Arc::new(store().await), std::sync::Arc::new(store().await));
    let start = Instant::now();
    for round in 0..20 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let attempt = |s: std::sync::Arc<S3Store>, barrier: std::sync::Arc<tokio::sync::Barrier>| {
            tokio::spawn(async move {
                barrier.wait().await;
                s.lock_s3("apply", Duration::ZERO).await
            })
        };
        let (ra, rb) = (attempt(a.clone(), barrier.clone()), attempt(b.clone(), barrier));
        let results = [ra.await.expect("task a"), rb.await.expect("task b")];
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        let loser = results.iter().find_map(|r| r.as_ref().err()).expect("a loser");
        assert!(matches!(loser, StateError::Locked { holder } if holder == winners[0].info()), "round {round}: {loser:?}");
        winners[0].release().await.expect("release");
    }
    let _ = writeln!(std::io::stderr(), "20 contention rounds took {:?}", start.elapsed());
}

/// The S3 requests of one plan (read) and one apply (read, lock, one journal
/// batch, commit, release), counted by moto's recorder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_run_are_few() {
    let Some(moto) = turn().await else { return };
    let seed = store().await;
    seed.read().await.expect("read");
    seed.commit(&sample(50), None).await.expect("seed");

    moto.start_recording();
    store().await.read().await.expect("plan's read");
    let plan = moto.recorded_paths();

    moto.start_recording();
    let s = store().await;
    let snap = s.read().await.expect("read");
    let guard = s.lock_s3("apply", Duration::ZERO).await.expect("lock");
    let mut state = snap.state.clone();
    let add = addr("himaplan_data.added");
    s.append_journal(&[
        JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() },
        JournalEntry::Set { address: add.clone(), resource: resource("added"), token: None },
    ])
    .await
    .expect("append");
    state.resources.insert(add, resource("added"));
    state.serial += 1;
    s.commit(&state, snap.text.as_deref()).await.expect("commit");
    guard.release().await.expect("release");
    let apply = moto.recorded_paths();
    let _ = writeln!(std::io::stderr(), "plan: {} requests {plan:?}\napply: {} requests {apply:?}", plan.len(), apply.len());
    assert_eq!(plan.len(), 2, "{plan:?}");
    // GET state, LIST journal, PUT lock, PUT journal, PUT backup, PUT state, DELETE journal batch, DELETE lock.
    assert_eq!(apply.len(), 8, "{apply:?}");
}
