//! Progress of a long embedding run: a bar with rate and ETA on a terminal, plain periodic
//! lines otherwise (logs of batch jobs).

use crate::pipeline::Tick;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Shows [`Tick`]s on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    last_line: Option<Instant>,
    every: Duration,
    label: String,
}

impl Progress {
    /// A bar when stderr is a terminal, else a line every `every`.
    pub fn new(label: &str, every: Duration) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} texts  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(label.to_string());
            bar
        });
        Progress {
            bar,
            start: Instant::now(),
            last_line: None,
            every,
            label: label.to_string(),
        }
    }

    pub fn tick(&mut self, t: Tick) {
        if let Some(bar) = &self.bar {
            bar.set_length(t.total as u64);
            if t.resumed == t.done {
                // Resumed texts cost nothing: keep them out of indicatif's rate estimate.
                bar.reset_elapsed();
                bar.reset_eta();
            }
            bar.set_position(t.done as u64);
            return;
        }
        let due = self.last_line.is_none_or(|l| l.elapsed() >= self.every) || t.done == t.total;
        if due {
            self.last_line = Some(Instant::now());
            eprintln!("{}", line(&self.label, t, self.start.elapsed()));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `label: done/total texts (p%), r texts/s, ETA ...` with the rate over this run's own work.
pub fn line(label: &str, t: Tick, elapsed: Duration) -> String {
    let worked = t.done.saturating_sub(t.resumed) as f64;
    let rate = worked / elapsed.as_secs_f64().max(1e-9);
    let pct = 100.0 * t.done as f64 / t.total.max(1) as f64;
    let eta = if rate > 0.0 {
        format_secs((t.total - t.done) as f64 / rate)
    } else {
        "?".into()
    };
    let resumed = if t.resumed > 0 {
        format!(" ({} resumed)", t.resumed)
    } else {
        String::new()
    };
    format!(
        "{label}: {}/{} texts ({pct:.0}%){resumed}, {rate:.1} texts/s, ETA {eta}",
        t.done, t.total
    )
}

fn format_secs(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_give_rate_and_eta_without_counting_resumed_work() {
        let t = Tick {
            done: 300,
            total: 1000,
            resumed: 100,
        };
        let l = line("embed", t, Duration::from_secs(10));
        assert_eq!(
            l,
            "embed: 300/1000 texts (30%) (100 resumed), 20.0 texts/s, ETA 35s"
        );
        assert_eq!(format_secs(3725.0), "1h02m");
    }
}
