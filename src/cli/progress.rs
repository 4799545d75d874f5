//! Progress of refresh and apply: a live spinner on a terminal, plain
//! timestamped-free lines otherwise (CI logs). Both go to stderr, so plans
//! and data on stdout stay clean.

use himaplan_engine::engine::{Event, Hooks};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct Progress {
    bar: Option<ProgressBar>,
    counts: Mutex<(usize, usize)>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar, counts: Mutex::new((0, 0)) }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn update(&self, started: isize, finished: usize) {
        let Ok(mut counts) = self.counts.lock() else { return };
        counts.0 = (counts.0 as isize + started).max(0) as usize;
        counts.1 += finished;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} running, {} done", counts.0, counts.1));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Hooks for Progress {
    fn event(&self, event: Event) {
        match event {
            Event::Refreshing { rtype, count } => {
                let objects = if count == 1 { "object" } else { "objects" };
                self.line(format!("Refreshing {count} {rtype} {objects}..."))
            }
            Event::ActionStarted { addr, what } => {
                self.update(1, 0);
                self.line(format!("{addr}: {what} started"));
            }
            Event::ActionFinished { addr, what, elapsed } => {
                self.update(-1, 1);
                self.line(format!("{addr}: {what} complete after {:.1}s", elapsed.as_secs_f64()));
            }
            Event::ActionFailed { addr, what, error } => {
                self.update(-1, 0);
                self.line(format!("{addr}: {what} FAILED: {error}"));
            }
            Event::Retrying { what, attempt, error } => self.line(format!("{what}: retry {attempt} after transient error: {error}")),
            Event::Note(text) => self.line(text),
        }
    }
}
