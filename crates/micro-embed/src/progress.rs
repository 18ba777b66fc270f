//! Progress of a long embedding run as a plain line (the logs of batch jobs): the pipeline
//! reports [`Tick`]s through a callback, and whoever runs it draws them (`micro` draws a bar on
//! a terminal and these lines otherwise).

use crate::pipeline::Tick;
use std::time::Duration;

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
