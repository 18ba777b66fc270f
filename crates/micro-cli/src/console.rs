//! The one place `micro` draws progress: [`Console`] is the [`Observer`] of every long command
//! (embed, train, demo). The library crates only emit typed events ([`Tick`], [`TrainEvent`],
//! [`SearchEvent`]) through callbacks; this turns them into bars on a terminal and plain lines
//! otherwise (the logs of batch jobs), with the line formats the libraries define and test.

use indicatif::{ProgressBar, ProgressStyle};
use micro_demo::Observer;
use micro_embed::Tick;
use micro_model::report::{done_line, epoch_line, start_line, trial_line};
use micro_model::{SearchEvent, TrainEvent};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How much of a training run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Training {
    /// `micro train`: the opening line, a bar per epoch and a line per epoch.
    Epochs,
    /// `micro demo`: one bar per training, named by its label, and no lines.
    Compact,
}

/// Progress on stderr, results on stdout.
pub struct Console {
    training: Training,
    terminal: bool,
    bar: Option<ProgressBar>,
    /// Plain embedding lines: the first, then one per `every`.
    every: Duration,
    /// When the embedding clock started, and how many texts were done then.
    embed_start: Option<(Instant, usize)>,
    last_line: Option<Instant>,
    max_epochs: usize,
    /// Inside a search: epoch lines only with a bar (a search's plain log is a line per trial).
    searching: bool,
    /// Where progress lines go without a bar: stderr.
    log: Box<dyn Write + Send>,
}

impl Console {
    /// Bars when stderr is a terminal; plain embedding lines every `every`.
    pub fn new(training: Training, every: Duration) -> Self {
        Console {
            training,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            every,
            embed_start: None,
            last_line: None,
            max_epochs: 0,
            searching: false,
            log: Box::new(std::io::stderr()),
        }
    }

    /// A progress line on the log. Like `eprintln!`, but a closed stderr is not worth a panic.
    fn log_line(&mut self, line: &str) {
        let _ = writeln!(self.log, "{line}");
    }

    /// Clears the bar, if any; the next embedding's plain lines time it from its own start.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        self.embed_start = None;
        self.last_line = None;
    }

    /// A new bar (replacing any), drawn only on a terminal.
    fn new_bar(&mut self, len: u64, template: &str) -> Option<&ProgressBar> {
        self.finish();
        if self.terminal {
            self.bar = Some(bar(len, template));
        }
        self.bar.as_ref()
    }

    /// A line on stderr that does not tear the bar.
    fn note(&mut self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => self.log_line(line),
        }
    }

    fn train_epochs(&mut self, e: &TrainEvent<'_>) {
        match e {
            TrainEvent::Start {
                steps_per_epoch,
                max_epochs,
                n_train,
                n_holdout,
            } => {
                self.max_epochs = *max_epochs;
                self.finish();
                self.log_line(&start_line(
                    *n_train,
                    *n_holdout,
                    *steps_per_epoch,
                    *max_epochs,
                ));
                let template = "{msg} [{bar:30}] {pos}/{len} steps, {per_sec}, ETA {eta}";
                if let Some(b) = self.new_bar(*steps_per_epoch as u64, template) {
                    b.set_message(format!("epoch 1/{max_epochs}"));
                }
            }
            TrainEvent::Step { .. } => {
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
            }
            TrainEvent::Epoch(s) => {
                let line = epoch_line(s, self.max_epochs);
                match &self.bar {
                    Some(b) => {
                        b.println(line);
                        b.reset();
                        b.set_message(format!("epoch {}/{}", s.epoch + 1, self.max_epochs));
                    }
                    None if !self.searching => self.log_line(&line),
                    None => {}
                }
            }
        }
    }

    fn train_compact(&mut self, label: &str, e: &TrainEvent<'_>) {
        match e {
            TrainEvent::Start {
                steps_per_epoch,
                max_epochs,
                ..
            } => {
                let template = format!("  {label:<22} {{bar:30}} epoch {{msg}} {{per_sec}}");
                self.new_bar((steps_per_epoch * max_epochs) as u64, &template);
            }
            TrainEvent::Step { step, epoch, .. } => {
                if let Some(b) = &self.bar {
                    b.set_position(*step as u64);
                    b.set_message(epoch.to_string());
                }
            }
            TrainEvent::Epoch(_) => {}
        }
    }
}

impl Observer for Console {
    fn step(&mut self, number: usize, what: &str) {
        self.finish();
        println!("[{number}] {what}");
    }

    fn line(&mut self, text: &str) {
        self.finish();
        println!("{text}");
    }

    fn embed(&mut self, t: Tick) {
        // Resumed texts cost nothing: the clock (re)starts while only they are done.
        let (start, base) = match self.embed_start {
            Some(clock) if t.resumed != t.done => clock,
            _ => *self.embed_start.insert((Instant::now(), t.done)),
        };
        if self.terminal {
            if self.bar.is_none() {
                self.new_bar(0, "  [{bar:30}] {pos}/{len} texts  {per_sec}  ETA {eta}");
            }
            if let Some(b) = &self.bar {
                b.set_length(t.total as u64);
                if t.resumed == t.done {
                    // Resumed texts cost nothing: keep them out of indicatif's rate estimate.
                    b.reset_elapsed();
                    b.reset_eta();
                }
                b.set_position(t.done as u64);
            }
            return;
        }
        let due = self.last_line.is_none_or(|l| l.elapsed() >= self.every) || t.done == t.total;
        if due {
            self.last_line = Some(Instant::now());
            let line = micro_embed::progress::line("embed", t, (base, start.elapsed()));
            self.log_line(&line);
        }
    }

    fn train(&mut self, label: &str, e: &TrainEvent<'_>) {
        match self.training {
            Training::Epochs => self.train_epochs(e),
            Training::Compact => self.train_compact(label, e),
        }
    }

    fn search(&mut self, label: &str, e: SearchEvent<'_>) {
        match e {
            SearchEvent::Train(t) => self.train(label, t),
            _ if self.training == Training::Compact => {}
            SearchEvent::Trial {
                index,
                total,
                point,
            } => {
                self.finish();
                self.searching = true;
                self.log_line(&trial_line(index, total, &point));
            }
            SearchEvent::Done(t) => self.note(&done_line(t)),
        }
    }
}

/// A progress bar of `len` steps drawn with the indicatif `template` (the default bar if the
/// template does not parse).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The lines a console wrote to its log.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn taken(&self) -> Vec<String> {
            let bytes = std::mem::take(&mut *self.0.lock().unwrap());
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    /// A console without a terminal whose log is `lines`.
    fn plain(lines: &Lines) -> Console {
        let mut c = Console::new(Training::Epochs, Duration::from_secs(3600));
        c.terminal = false;
        c.log = Box::new(lines.clone());
        c
    }

    #[test]
    fn plain_mode_prints_the_first_and_the_last_tick_and_restarts_the_clock() {
        let lines = Lines::default();
        let mut c = plain(&lines);
        let t = |done| Tick {
            done,
            total: 10,
            resumed: 0,
        };
        c.embed(t(1));
        c.embed(t(5));
        let first = lines.taken();
        assert_eq!(
            first.len(),
            1,
            "the first tick alone within `every`: {first:?}"
        );
        assert!(first[0].contains("1/10"), "{first:?}");
        // The first tick counts work the clock did not see: no rate yet.
        assert!(first[0].contains("? texts/s, ETA ?"), "{first:?}");
        c.embed(t(10));
        let last = lines.taken();
        assert_eq!(last.len(), 1, "the last tick prints a line: {last:?}");
        assert!(last[0].contains("10/10"), "{last:?}");
        assert!(
            !last[0].contains("? texts/s"),
            "a rate over 9 timed texts: {last:?}"
        );
        assert!(c.bar.is_none());
        c.finish();
        assert!(c.embed_start.is_none() && c.last_line.is_none());
        c.embed(t(1));
        assert_eq!(
            lines.taken().len(),
            1,
            "a second embedding prints its first tick"
        );
    }

    #[test]
    fn plain_training_prints_the_opening_line_and_each_epoch() {
        let lines = Lines::default();
        let mut c = plain(&lines);
        c.train(
            "train",
            &TrainEvent::Start {
                steps_per_epoch: 3,
                max_epochs: 2,
                n_train: 90,
                n_holdout: 10,
            },
        );
        let stats = micro_model::EpochStats {
            epoch: 1,
            train_loss: 0.5,
            holdout_nll: None,
            lr: 1e-3,
            seconds: 0.5,
        };
        c.train("train", &TrainEvent::Epoch(&stats));
        assert_eq!(
            lines.taken(),
            vec![start_line(90, 10, 3, 2), epoch_line(&stats, 2)]
        );
    }
}
