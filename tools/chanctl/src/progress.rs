//! Progress bars (indicatif) on stderr — only when stderr is a terminal, so scripts and pipes
//! never see them.

use file_channel::inspect::verify::{Progress, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;

/// A bar, or nothing when stderr is not a terminal.
#[derive(Clone)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar counting `unit`s, shown only on a terminal.
    pub fn new(unit: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let template = format!("{{msg:>8}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{eta}})");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self(Some(bar))
    }

    /// Sets the phase, position and total.
    pub fn set(&self, phase: &str, done: u64, total: u64) {
        if let Some(b) = &self.0 {
            if b.message() != phase {
                b.set_message(phase.to_owned());
            }
            b.set_length(total);
            b.set_position(done);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }

    /// A callback for the library's scans, or `None` when no bar is shown.
    pub fn scan_callback(&self) -> Option<ProgressFn> {
        let bar = self.clone();
        self.0.as_ref().map(|_| {
            Arc::new(move |p: Progress| bar.set(p.phase, p.done as u64, p.total as u64))
                as ProgressFn
        })
    }
}
