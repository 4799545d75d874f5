//! What a configuration's functions read from outside it: file contents
//! (`file`, `templatefile`, `filebase64`, the file hashes, `fileexists`,
//! `fileset`) and the plan's time (`plantimestamp`).
//!
//! A plan records every such read; a plan file keeps the record
//! ([`Recorded`]) beside the configuration's sources, and `apply FILE`
//! evaluates against the record instead of the disk and the clock, so it
//! reads nothing from the working directory and computes exactly the
//! values the plan showed. One [`Inputs`] is shared by every file of one
//! loaded configuration (each [`SourceFile`](crate::diag::SourceFile)
//! holds it).
//!
//! Bounded: the record holds at most [`MAX_RECORDED_BYTES`].

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// The most file content one plan may record (and so one plan file hold).
pub const MAX_RECORDED_BYTES: usize = 64 * 1024 * 1024;

/// The serialised record, as a plan file stores it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// `plantimestamp()`, RFC 3339, when the plan called it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_time: Option<String>,
    /// One entry per distinct read, keyed by what was read (e.g.
    /// `file:/abs/path`), with the JSON of its result or error.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reads: BTreeMap<String, Result<serde_json::Value, String>>,
}

#[derive(Debug)]
pub struct Inputs {
    /// `Some` when replaying a plan file's record.
    replay: Option<Recorded>,
    plan_time: OnceLock<DateTime<Utc>>,
    recorded: Mutex<(BTreeMap<String, Result<serde_json::Value, String>>, usize)>,
    /// Set when apply starts: impure functions (`uuid`, `timestamp`,
    /// `bcrypt`) then produce their values instead of unknown.
    applying: AtomicBool,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs::recording()
    }
}

impl Inputs {
    /// Reads the disk and the clock, and records what it read.
    pub fn recording() -> Inputs {
        Inputs { replay: None, plan_time: OnceLock::new(), recorded: Mutex::new((BTreeMap::new(), 0)), applying: AtomicBool::new(false) }
    }

    /// Answers only from `record`: nothing is read from the disk or clock.
    pub fn replaying(record: Recorded) -> Inputs {
        let plan_time = OnceLock::new();
        if let Some(t) = record.plan_time.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
            let _ = plan_time.set(t.with_timezone(&Utc));
        }
        Inputs { replay: Some(record), plan_time, recorded: Mutex::new((BTreeMap::new(), 0)), applying: AtomicBool::new(false) }
    }

    /// From now on the configuration is evaluated by apply.
    pub fn start_applying(&self) {
        self.applying.store(true, Ordering::SeqCst);
    }

    pub fn applying(&self) -> bool {
        self.applying.load(Ordering::SeqCst)
    }

    /// The plan's time, in whole seconds as it is printed and recorded:
    /// the first call's clock reading when recording, the plan's when
    /// replaying.
    pub fn plan_time(&self) -> DateTime<Utc> {
        *self.plan_time.get_or_init(|| Utc::now().trunc_subsecs(0))
    }

    /// The result of one outside read named `key`: computed (and recorded)
    /// when recording, looked up when replaying. `size` is the bytes the
    /// result adds to the record.
    pub fn read<T: Serialize + for<'de> Deserialize<'de>>(
        &self,
        key: String,
        compute: impl FnOnce() -> Result<T, String>,
        size: impl Fn(&T) -> usize,
    ) -> Result<T, String> {
        if let Some(record) = &self.replay {
            return match record.reads.get(&key) {
                Some(Ok(json)) => {
                    serde_json::from_value(json.clone()).map_err(|e| format!("the plan file's record of {key} is damaged: {e}"))
                }
                Some(Err(message)) => Err(message.clone()),
                None => Err(format!("{key} was not read when the plan was made; make the plan again")),
            };
        }
        let mut guard = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(done) = guard.0.get(&key) {
            return match done {
                Ok(json) => serde_json::from_value(json.clone()).map_err(|e| e.to_string()),
                Err(message) => Err(message.clone()),
            };
        }
        let result = compute();
        let entry = match &result {
            Ok(value) => {
                let bytes = size(value);
                if guard.1 + bytes > MAX_RECORDED_BYTES {
                    return Err(format!(
                        "the files read by this configuration's functions exceed {MAX_RECORDED_BYTES} bytes in all, which a plan file records"
                    ));
                }
                guard.1 += bytes;
                Ok(serde_json::to_value(value).map_err(|e| e.to_string())?)
            }
            Err(message) => Err(message.clone()),
        };
        guard.0.insert(key, entry);
        result
    }

    /// What was read, for a plan file.
    pub fn record(&self) -> Recorded {
        if let Some(record) = &self.replay {
            return record.clone();
        }
        let guard = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Recorded { plan_time: self.plan_time.get().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)), reads: guard.0.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_answers_from_the_record_and_never_computes() {
        let live = Inputs::recording();
        let text: String = live.read("file:/x".into(), || Ok("hello".to_string()), String::len).unwrap();
        assert_eq!(text, "hello");
        let _ = live.plan_time();
        let replay = Inputs::replaying(live.record());
        let again: String = replay.read("file:/x".into(), || panic!("replay must not read"), String::len).unwrap();
        assert_eq!(again, "hello");
        assert_eq!(replay.plan_time(), live.plan_time());
        assert!(replay.read::<String>("file:/y".into(), || Ok(String::new()), String::len).is_err());
    }

    #[test]
    fn the_record_is_bounded() {
        let live = Inputs::recording();
        let big = "x".repeat(MAX_RECORDED_BYTES / 2 + 1);
        assert!(live.read("a".into(), || Ok(big.clone()), String::len).is_ok());
        let err = live.read("b".into(), || Ok(big.clone()), String::len).unwrap_err();
        assert!(err.contains("exceed"), "{err}");
    }
}
