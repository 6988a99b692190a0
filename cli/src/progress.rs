//! Signs of life for slow steps (installing componentize-js, building a JavaScript function, compiling a
//! component on its first run). At a terminal: an indicatif spinner with what is being done and the elapsed
//! time, replaced by one line when the step ends. Otherwise (a pipe, a log file, CI): one plain line when the
//! step starts. Nothing with `-q`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{note, quiet};

/// One slow step under way; [`Step::finish`] ends it.
pub struct Step {
    what: String,
    started: Instant,
    spinner: Option<ProgressBar>,
}

impl Step {
    pub fn start(what: impl Into<String>) -> Self {
        let what = what.into();
        let spinner = if std::io::stderr().is_terminal() && !quiet() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template");
            bar.set_style(style);
            bar.set_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            note!("{what} ...");
            None
        };
        Step { what, started: Instant::now(), spinner }
    }

    /// Ends the step; at a terminal the spinner becomes `<what>: done in 6.3 s`.
    pub fn finish(mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
            note!("{}: done in {:.1} s", self.what, self.started.elapsed().as_secs_f64());
        }
    }
}

/// A step that fails ends with its spinner cleared, so the error is printed on a clean line.
impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}
