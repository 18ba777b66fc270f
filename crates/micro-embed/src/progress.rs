//! Progress of a long embedding run as a plain line (the logs of batch jobs): the pipeline
//! reports [`Tick`]s through a callback, and whoever runs it draws them (`micro` draws a bar on
//! a terminal and these lines otherwise).

use crate::pipeline::Tick;
use std::time::Duration;

/// `label: done/total texts (p%), r texts/s, ETA ...`, the rate over the texts embedded since
/// the clock started (`clock`: how many were done then, and the time since): the first tick of
/// a run already counts a batch (or resumed texts) that the clock did not see, so a rate over
/// `done` would be unbounded. Before any timed work the rate and ETA are `?`.
pub fn line(label: &str, t: Tick, clock: (usize, Duration)) -> String {
    let (base, elapsed) = clock;
    let worked = t.done.saturating_sub(base) as f64;
    let secs = elapsed.as_secs_f64();
    let (rate, eta) = if worked > 0.0 && secs > 0.0 {
        let rate = worked / secs;
        let eta = format_secs(t.total.saturating_sub(t.done) as f64 / rate);
        (format!("{rate:.1}"), eta)
    } else {
        ("?".into(), "?".into())
    };
    let pct = 100.0 * t.done as f64 / t.total.max(1) as f64;
    let resumed = if t.resumed > 0 {
        format!(" ({} resumed)", t.resumed)
    } else {
        String::new()
    };
    format!(
        "{label}: {}/{} texts ({pct:.0}%){resumed}, {rate} texts/s, ETA {eta}",
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
    fn plain_lines_give_rate_and_eta_over_the_timed_work_only() {
        let t = Tick {
            done: 300,
            total: 1000,
            resumed: 100,
        };
        // The clock started when 100 texts (the resumed ones) were done.
        let l = line("embed", t, (100, Duration::from_secs(10)));
        assert_eq!(
            l,
            "embed: 300/1000 texts (30%) (100 resumed), 20.0 texts/s, ETA 35s"
        );
        assert_eq!(format_secs(3725.0), "1h02m");
    }

    #[test]
    fn the_first_tick_has_no_rate_yet() {
        // The clock starts at the first tick, which already counts a batch.
        let t = Tick {
            done: 512,
            total: 8725,
            resumed: 0,
        };
        let l = line("embed", t, (512, Duration::from_nanos(200)));
        assert_eq!(l, "embed: 512/8725 texts (6%), ? texts/s, ETA ?");
    }
}
