//! `backend "s3"`: state kept in an S3 object, with its lock, journal and
//! backup beside it ([`S3Store`]), and [`copy_state`] to move state between
//! any two stores (`state push` / `state pull`).
//!
//! Layout for state object `KEY` in `BUCKET`:
//! - `KEY`: the canonical state, with user metadata `himaplan-sha256` = hex
//!   SHA-256 of the body, verified on every read;
//! - `KEY.backup`: the state as the last committing run found it;
//! - `KEY.lock`: the run lock, created with `If-None-Match: *` and holding
//!   the holder's [`LockInfo`] as JSON;
//! - `KEY.journal/<run>/<seq>`: one object per group-committed batch of
//!   journal entries (JSON lines); `<run>` sorts by start time, `<seq>` is
//!   zero-padded, so a listing is replay order.
//!
//! Guarantees: a state whose checksum does not match is refused and never
//! overwritten by the failed read; the state write sends `If-Match` with
//! the ETag `read` saw (`If-None-Match: *` when there was none), so a run
//! whose lock was removed cannot overwrite newer state; `force_unlock` and
//! the lock release delete `KEY.lock` only with the ETag they read or wrote.
//! This is the one place outside `providers/` that links a cloud SDK; it
//! decides nothing about what a run changes and never prints.

use crate::providers::aws::client::{connect_s3, s3_error};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use himaplan_engine::state::journal::JournalEntry;
use himaplan_engine::state::{LockInfo, Snapshot, State, StateError, StateLockGuard, StateStore, file, new_id};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// User metadata key holding the body's hex SHA-256.
pub const CHECKSUM_METADATA: &str = "himaplan-sha256";
/// How often a waiting run retries the lock.
pub const LOCK_POLL: Duration = Duration::from_millis(250);
/// Keys per DeleteObjects request (the API's maximum).
const DELETE_BATCH: usize = 1000;

/// State in S3. One value serves one run: `read` remembers the ETag that
/// `commit` must match and the journal objects `commit` folds away.
#[derive(Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    key: String,
    region: Option<String>,
    session: Mutex<Session>,
}

/// What one run learnt from `read` and wrote since.
#[derive(Debug, Default)]
struct Session {
    /// The state object's ETag at `read`: `None` before any read,
    /// `Some(None)` when the object did not exist.
    etag: Option<Option<String>>,
    /// Journal objects read and written, to delete at commit.
    journal_keys: Vec<String>,
    /// The greatest run part of the journal keys read, so this run's sorts after it.
    latest_run: Option<String>,
    run: Option<String>,
    next_seq: u64,
}

impl S3Store {
    /// A store for `s3://bucket/key`. `region` `None` falls back to the
    /// environment, profile, else `us-east-1`; `AWS_ENDPOINT_URL` /
    /// `AWS_ENDPOINT_URL_S3` are honoured. Makes no request.
    pub async fn new(bucket: impl Into<String>, key: impl Into<String>, region: Option<String>) -> Result<S3Store, StateError> {
        let (bucket, key) = (bucket.into(), key.into());
        if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
            return Err(StateError::Other(format!(
                "backend \"s3\": bucket and key must be set and key must name an object, got bucket {bucket:?}, key {key:?}"
            )));
        }
        let client = connect_s3(region.clone()).await;
        Ok(S3Store { client, bucket, key, region, session: Mutex::new(Session::default()) })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    pub fn backup_key(&self) -> String {
        format!("{}.backup", self.key)
    }

    pub fn journal_prefix(&self) -> String {
        format!("{}.journal/", self.key)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the lock like [`StateStore::lock`], returning the concrete
    /// guard so that the caller can [`S3Lock::release`] it explicitly.
    pub async fn lock_s3(&self, operation: &str, timeout: Duration) -> Result<S3Lock, StateError> {
        let info = LockInfo::new(operation);
        let body = serde_json::to_string_pretty(&info).map_err(|e| StateError::Other(e.to_string()))?;
        let lock_key = self.lock_key();
        // `None` (a timeout too large to add to now) means wait for ever.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&lock_key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(format!("{body}\n").into_bytes()))
                .send()
                .await;
            let etag = match put {
                Ok(out) => out.e_tag().map(str::to_string),
                Err(e) if is_precondition_failed(&e) || is_conflict(&e) => {
                    // A retried PUT whose first attempt landed finds its own
                    // lock: that is success, not contention.
                    match self.get(&lock_key).await? {
                        Some((text, etag, _)) if holder(&text).id == info.id => etag,
                        Some((text, _, _)) => {
                            let holder = holder(&text);
                            let now = Instant::now();
                            if timeout.is_zero() {
                                return Err(StateError::Locked { holder });
                            }
                            if deadline.is_some_and(|d| now >= d) {
                                return Err(StateError::LockTimeout { holder });
                            }
                            let wait = deadline.map_or(LOCK_POLL, |d| LOCK_POLL.min(d - now));
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        // Released between our PUT and GET: try again at once.
                        None => continue,
                    }
                }
                Err(e) => return Err(self.failed("taking the lock", &lock_key, e)),
            };
            return Ok(S3Lock {
                info,
                client: self.client.clone(),
                bucket: self.bucket.clone(),
                lock_key,
                etag,
                region: self.region.clone(),
                released: AtomicBool::new(false),
            });
        }
    }

    /// One read of the state object and then its journal objects.
    async fn read_once(&self) -> Result<Snapshot, StateError> {
        let found = self.get(&self.key).await?;
        let location = PathBuf::from(self.location());
        let (mut state, exists, text, etag) = match found {
            Some((text, etag, checksum)) => {
                // Remembered before the checks: `state push --force` may then
                // replace exactly this unusable object, and nothing newer.
                self.session().etag = Some(etag.clone());
                self.verify(&text, checksum.as_deref())?;
                (file::parse(&text, &location)?, true, Some(text), etag)
            }
            None => (State::new_lineage(), false, None, None),
        };
        let keys = self.list_journal().await?;
        let mut entries = Vec::new();
        for key in &keys {
            // Listed but gone: a committing run deleted it meanwhile; the
            // conditional write at commit catches the race.
            let Some((body, _, _)) = self.get(key).await? else { continue };
            entries.extend(parse_journal_object(&body, &self.url(key))?);
        }
        let journal_url = PathBuf::from(self.url(&self.journal_prefix()));
        let (journal_replayed, unfinished_intents) =
            himaplan_engine::state::store::replay_segments(&mut state, exists, &entries, &journal_url)?;
        let mut session = self.session();
        session.etag = Some(etag);
        session.latest_run = keys.iter().filter_map(|k| run_of(k, &self.journal_prefix())).max();
        session.journal_keys = keys;
        Ok(Snapshot { state, exists, text, journal_replayed, unfinished_intents })
    }

    /// The object's text, ETag and checksum metadata; `None` when missing.
    async fn get(&self, key: &str) -> Result<Option<(String, Option<String>, Option<String>)>, StateError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.failed("reading", key, e)),
        };
        let etag = out.e_tag().map(str::to_string);
        let checksum = out.metadata().and_then(|m| m.get(CHECKSUM_METADATA)).cloned();
        let url = self.url(key);
        let bytes = match out.body.collect().await {
            Ok(bytes) => bytes.into_bytes(),
            Err(e) => return Err(StateError::backend_caused(&url, format!("reading {url}: the download broke off: {e}"), e)),
        };
        // Not refused here: bytes that are not UTF-8 come out changed, so the
        // state's checksum check refuses them with the way out, and a lock or
        // journal body fails its own parse naming the object.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Some((text, etag, checksum)))
    }

    /// Puts `body` with its checksum; `condition` is `If-Match` (Some(etag))
    /// or `If-None-Match: *` (Some(None)); `None` puts unconditionally.
    async fn put_checked(
        &self,
        key: &str,
        body: &str,
        condition: Option<Option<&str>>,
    ) -> Result<Option<String>, SdkError<aws_sdk_s3::operation::put_object::PutObjectError, HttpResponse>> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .metadata(CHECKSUM_METADATA, sha256_hex(body.as_bytes()))
            .body(ByteStream::from(body.as_bytes().to_vec()));
        match condition {
            Some(Some(etag)) => put = put.if_match(etag),
            Some(None) => put = put.if_none_match("*"),
            None => {}
        }
        Ok(put.send().await?.e_tag().map(str::to_string))
    }

    async fn list_journal(&self) -> Result<Vec<String>, StateError> {
        let prefix = self.journal_prefix();
        let mut keys = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failed("listing", &prefix, e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StateError> {
        let unbuildable = |e: BuildError| StateError::backend_caused(self.url(&self.journal_prefix()), e.to_string(), e);
        for chunk in keys.chunks(DELETE_BATCH) {
            let ids =
                chunk.iter().map(|k| ObjectIdentifier::builder().key(k).build().map_err(unbuildable)).collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(unbuildable)?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.failed("deleting the journal", &self.journal_prefix(), e))?;
            if let Some(err) = out.errors().first() {
                let url = self.url(err.key().unwrap_or("?"));
                let why = err.message().or(err.code()).unwrap_or("unknown error");
                return Err(StateError::backend(&url, format!("deleting journal object {url}: {why}")));
            }
        }
        Ok(())
    }

    fn failed<E>(&self, doing: &str, key: &str, err: SdkError<E, HttpResponse>) -> StateError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        failed(self.url(key), doing, "request", err)
    }

    /// The way out offered whenever the state object cannot be used.
    fn restore_advice(&self) -> String {
        format!(
            "it was not used and nothing was written; restore a previous version of the object (with bucket versioning) or copy {} over it \
             (e.g. `aws s3 cp {} {}`, which keeps the checksum metadata), then run again",
            self.url(&self.backup_key()),
            self.url(&self.backup_key()),
            self.url(&self.key)
        )
    }

    /// Verifies a state body against its checksum metadata.
    fn verify(&self, text: &str, checksum: Option<&str>) -> Result<(), StateError> {
        let invalid = |message: String| StateError::Invalid { path: PathBuf::from(self.url(&self.key)), message };
        let actual = sha256_hex(text.as_bytes());
        match checksum {
            None => Err(invalid(format!(
                "the object has no {CHECKSUM_METADATA} metadata, so it was not written by himaplan (or lost its metadata); {}, \
                 or upload a good state file with `himaplan state push`",
                self.restore_advice()
            ))),
            Some(expected) if !expected.eq_ignore_ascii_case(&actual) => Err(invalid(format!(
                "checksum mismatch: the body ({} bytes) has sha256 {actual}, but {CHECKSUM_METADATA} says {expected}: \
                 the object is truncated or was changed outside himaplan; {}",
                text.len(),
                self.restore_advice()
            ))),
            Some(_) => Ok(()),
        }
    }
}

#[async_trait]
impl StateStore for S3Store {
    fn location(&self) -> String {
        self.url(&self.key)
    }

    async fn read(&self) -> Result<Snapshot, StateError> {
        himaplan_engine::state::store::read_consistent(|| self.read_once()).await
    }

    async fn lock(&self, operation: &str, timeout: Duration) -> Result<Box<dyn StateLockGuard>, StateError> {
        Ok(Box::new(self.lock_s3(operation, timeout).await?))
    }

    async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let lock_key = self.lock_key();
        let no_such = || StateError::NoSuchLock { id: id.to_string() };
        let Some((text, etag, _)) = self.get(&lock_key).await? else {
            return Err(no_such());
        };
        let held = holder(&text);
        if held.id.is_empty() || held.id != id {
            return Err(no_such());
        }
        let mut delete = self.client.delete_object().bucket(&self.bucket).key(&lock_key);
        if let Some(etag) = etag {
            delete = delete.if_match(etag);
        }
        match delete.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(no_such()),
            Err(e) if is_precondition_failed(&e) => {
                let url = self.url(&lock_key);
                Err(StateError::backend_caused(
                    &url,
                    format!(
                        "the lock {url} changed while it was being removed (its holder released it, or another run took it); nothing was \
                         removed: look at the lock error again"
                    ),
                    e,
                ))
            }
            Err(e) => Err(self.failed("removing the lock", &lock_key, e)),
        }
    }

    async fn append_journal(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut body = String::with_capacity(entries.len() * 256);
        for entry in entries {
            body.push_str(&serde_json::to_string(entry).map_err(|e| StateError::Other(format!("journal entry: {e}")))?);
            body.push('\n');
        }
        let key = {
            let mut session = self.session();
            let run = match &session.run {
                Some(run) => run.clone(),
                None => {
                    let run = next_run_id(session.latest_run.as_deref());
                    session.run = Some(run.clone());
                    run
                }
            };
            let key = format!("{}{run}/{:08}", self.journal_prefix(), session.next_seq);
            session.next_seq += 1;
            key
        };
        self.put_checked(&key, &body, None).await.map_err(|e| self.failed("writing journal object", &key, e))?;
        self.session().journal_keys.push(key);
        Ok(())
    }

    async fn commit(&self, state: &State, run_start_text: Option<&str>) -> Result<(), StateError> {
        let Some(expected) = self.session().etag.clone() else {
            return Err(StateError::Other(format!(
                "{}: commit without a preceding read; the store must read the state first so the write can be made conditional",
                self.location()
            )));
        };
        if let Some(old) = run_start_text {
            let backup = self.backup_key();
            self.put_checked(&backup, old, None).await.map_err(|e| self.failed("writing the backup", &backup, e))?;
        }
        let body = file::to_canonical_json(state);
        let new_etag = match self.put_checked(&self.key, &body, Some(expected.as_deref())).await {
            Ok(etag) => etag,
            Err(e) if is_precondition_failed(&e) || is_conflict(&e) => {
                // A retried PUT whose first attempt landed sees its own body.
                match self.get(&self.key).await? {
                    Some((_, etag, Some(sum))) if sum == sha256_hex(body.as_bytes()) => etag,
                    _ => {
                        let message = format!(
                            "{} changed since this run read it (412 Precondition Failed): another run wrote it, so this run's lock \
                             must have been removed; nothing was overwritten. This run's journal is kept under {}; run `himaplan plan` \
                             to see what the other run left and what this one changed",
                            self.location(),
                            self.url(&self.journal_prefix())
                        );
                        return Err(StateError::backend_caused(self.location(), message, e));
                    }
                }
            }
            Err(e) => return Err(self.failed("writing", &self.key, e)),
        };
        let keys = {
            let mut session = self.session();
            session.etag = Some(new_etag);
            session.run = None;
            session.next_seq = 0;
            std::mem::take(&mut session.journal_keys)
        };
        self.delete_keys(&keys).await
    }

    async fn discard_journal(&self) -> Result<(), StateError> {
        let keys = {
            let mut session = self.session();
            session.run = None;
            session.next_seq = 0;
            std::mem::take(&mut session.journal_keys)
        };
        self.delete_keys(&keys).await
    }
}

/// A held S3 run lock (`KEY.lock`).
///
/// Call [`S3Lock::release`] when done. Dropping an unreleased guard still
/// deletes the lock object: on a multi-threaded tokio runtime (the CLI's)
/// by blocking the current worker until the delete is done, elsewhere on a
/// short-lived thread with its own runtime and client. Either way the drop
/// waits for the delete, so the lock is gone before the process exits.
#[derive(Debug)]
pub struct S3Lock {
    info: LockInfo,
    client: Client,
    bucket: String,
    lock_key: String,
    /// The ETag of the lock object we wrote: release deletes only that one.
    etag: Option<String>,
    region: Option<String>,
    released: AtomicBool,
}

impl S3Lock {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Deletes the lock object if it is still ours. A lock that was
    /// force-unlocked (and perhaps taken by another run since) is left alone.
    pub async fn release(&self) -> Result<(), StateError> {
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        delete_lock(&self.client, &self.bucket, &self.lock_key, self.etag.as_deref()).await
    }
}

impl StateLockGuard for S3Lock {
    fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for S3Lock {
    fn drop(&mut self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        let (bucket, key, etag) = (self.bucket.clone(), self.lock_key.clone(), self.etag.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let client = self.client.clone();
            // Errors cannot be reported from drop; a lock left behind is
            // named by the next run, which can force-unlock it.
            let _ = tokio::task::block_in_place(|| handle.block_on(delete_lock(&client, &bucket, &key, etag.as_deref())));
            return;
        }
        // A current-thread runtime cannot be blocked on from inside itself,
        // and the SDK client's connections belong to it: use a fresh client
        // on a thread of its own, and wait for it.
        let region = self.region.clone();
        let worker = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let client = connect_s3(region).await;
                let _ = delete_lock(&client, &bucket, &key, etag.as_deref()).await;
            });
        });
        let _ = worker.join();
    }
}

async fn delete_lock(client: &Client, bucket: &str, key: &str, etag: Option<&str>) -> Result<(), StateError> {
    let mut delete = client.delete_object().bucket(bucket).key(key);
    if let Some(etag) = etag {
        delete = delete.if_match(etag);
    }
    match delete.send().await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_precondition_failed(&e) => Ok(()),
        Err(e) => Err(failed(format!("s3://{bucket}/{key}"), "releasing the lock", "DeleteObject", e)),
    }
}

/// A failed request of S3 operation `op` while `doing` something to the
/// object at `url`: the message names both and S3's answer; the source is
/// the classified error, which carries the SDK's.
fn failed<E>(url: String, doing: &str, op: &str, err: SdkError<E, HttpResponse>) -> StateError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = s3_error(op, err);
    let message = format!("{doing} {url}: {error}");
    StateError::backend_caused(url, message, error)
}

/// Copies the state of `from` into `to` (`state push` / `state pull`).
///
/// The caller holds `to`'s lock. Refuses, changing nothing, when `to`
/// holds a state of another lineage, a newer serial, or a different state
/// of the same serial, and when `from` has unfinished creates from a
/// crashed run (apply there first so they are recovered). Returns whether
/// anything was written.
pub async fn copy_state(from: &dyn StateStore, to: &dyn StateStore) -> Result<bool, StateError> {
    let source = from.read().await?;
    if !source.exists && !source.journal_replayed {
        return Err(StateError::Other(format!("{} holds no state to copy", from.location())));
    }
    if !source.unfinished_intents.is_empty() {
        return Err(StateError::Other(format!(
            "{} has {} unfinished create(s) from a crashed run; run `himaplan apply` against it first so they are recovered",
            from.location(),
            source.unfinished_intents.len()
        )));
    }
    let target = to.read().await?;
    if target.exists || target.journal_replayed {
        let (s, t) = (&source.state, &target.state);
        if t.lineage != s.lineage {
            return Err(StateError::Other(format!(
                "{} holds a state of lineage {}, not {} (from {}): it is another configuration's state; nothing was copied",
                to.location(),
                t.lineage,
                s.lineage,
                from.location()
            )));
        }
        if t.serial > s.serial {
            return Err(StateError::Other(format!(
                "{} is newer (serial {}) than {} (serial {}); nothing was copied",
                to.location(),
                t.serial,
                from.location(),
                s.serial
            )));
        }
        if t == s && !target.journal_replayed {
            return Ok(false);
        }
        if t.serial == s.serial && t != s {
            return Err(StateError::Other(format!(
                "{} and {} both have serial {} but differ: they diverged; compare them before choosing one",
                to.location(),
                from.location(),
                s.serial
            )));
        }
    }
    to.commit(&source.state, target.text.as_deref()).await?;
    Ok(true)
}

// ---------------------------------------------------------------------------
// Pure helpers

/// The holder a lock body names, or [`LockInfo::unknown`].
fn holder(text: &str) -> LockInfo {
    serde_json::from_str(text).unwrap_or_else(|_| LockInfo::unknown())
}

/// The `<run>` part of a journal key.
fn run_of(key: &str, prefix: &str) -> Option<String> {
    key.strip_prefix(prefix)?.split('/').next().map(str::to_string)
}

/// A run id (`<ms since epoch, 13 digits>-<random>`) that sorts after
/// `latest`, even when this machine's clock is behind the one that wrote it.
fn next_run_id(latest: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let after = latest.and_then(|l| l.split('-').next()).and_then(|ms| ms.parse::<u64>().ok()).map_or(0, |ms| ms + 1);
    let random: String = new_id().chars().filter(|c| *c != '-').take(8).collect();
    format!("{:013}-{random}", now.max(after))
}

/// The entries of one journal object (JSON lines). S3 writes objects
/// whole, so unlike the local journal there is no torn last line to forgive.
fn parse_journal_object(body: &str, url: &str) -> Result<Vec<JournalEntry>, StateError> {
    body.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| StateError::Invalid {
                path: PathBuf::from(url),
                message: format!(
                    "journal line {} is corrupt: {e}; it cannot be replayed safely: inspect it, and delete the object to continue without the changes it records",
                    i + 1
                ),
            })
        })
        .collect()
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

fn is_precondition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.code() == Some("PreconditionFailed") || status(err) == Some(412)
}

/// S3's answer to two conditional writes racing on one key: retry.
fn is_conflict<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.code() == Some("ConditionalRequestConflict") || status(err) == Some(409)
}

fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err.code(), Some("NoSuchKey" | "NotFound")) || status(err) == Some(404)
}

/// Hex SHA-256 of `data`, the checksum stored with the state object.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(sha256_hex(&million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }

    #[test]
    fn run_ids_sort_after_the_latest_seen() {
        // A machine whose clock is behind still writes a run that replays after the earlier one.
        let future = "4102444800000-abcdefgh";
        let next = next_run_id(Some(future));
        assert!(next.as_str() > future, "{next}");
        assert!(next.starts_with("4102444800001-"));
        let now = next_run_id(None);
        assert_eq!(now.len(), 13 + 1 + 8);
        assert_eq!(run_of("s/k.json.journal/123-ab/00000001", "s/k.json.journal/").as_deref(), Some("123-ab"));
    }

    #[test]
    fn journal_objects_parse_or_name_the_bad_line() {
        let ok = "{\"op\":\"begin\",\"serial\":1,\"lineage\":\"l\"}\n{\"op\":\"remove\",\"address\":\"a_b.c\"}\n";
        assert_eq!(parse_journal_object(ok, "s3://b/k").expect("parse").len(), 2);
        let err = parse_journal_object("{\"op\":\"begin\",\"serial\":1,\"lineage\":\"l\"}\n{oops\n", "s3://b/k").expect_err("bad");
        assert!(err.to_string().contains("journal line 2 is corrupt"), "{err}");
    }

    #[test]
    fn unreadable_lock_body_is_an_unknown_holder() {
        assert_eq!(holder("garbage"), LockInfo::unknown());
        let info = LockInfo::new("apply");
        assert_eq!(holder(&serde_json::to_string(&info).expect("json")), info);
    }
}
