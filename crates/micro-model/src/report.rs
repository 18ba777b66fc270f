//! Training progress and search results as text, as `micro train` prints them: the lines for
//! the trainer's [`TrainEvent`](crate::TrainEvent)s and the search's
//! [`SearchEvent`](crate::SearchEvent)s (whoever runs the training draws them; `micro` adds a bar
//! on a terminal), and [`SearchTable`] for a finished search.

use crate::search::{Search, Trial};
use crate::train::EpochStats;
use std::fmt;

/// The line that opens a training run.
pub fn start_line(n_train: usize, n_holdout: usize, steps: usize, max_epochs: usize) -> String {
    format!("training on {n_train} pairs, {n_holdout} held out, {steps} steps per epoch, at most {max_epochs} epochs")
}

/// The line that closes an epoch.
pub fn epoch_line(s: &EpochStats, max_epochs: usize) -> String {
    let held = s
        .holdout_nll
        .map(|v| format!(", held-out NLL {v:.4}"))
        .unwrap_or_default();
    format!(
        "epoch {}/{}: loss {:.4}{held}, lr {:.2e}, {:.2} s",
        s.epoch, max_epochs, s.train_loss, s.lr, s.seconds
    )
}

/// The line that opens a search trial (`index` 0-based).
pub fn trial_line(index: usize, total: usize, alpha: f32, lr: f32) -> String {
    format!("search {}/{total}: alpha {alpha}, lr {lr:.1e}", index + 1)
}

/// The line that closes a search trial.
pub fn done_line(t: &Trial) -> String {
    format!(
        "  held-out NLL {:.4} at epoch {} of {} ({:.1} s)",
        t.holdout_nll, t.best_epoch, t.epochs_run, t.seconds
    )
}

/// The grid of a search, each point's held-out NLL, and the kept point.
pub struct SearchTable<'a> {
    pub search: &'a Search,
    /// Held-out pairs the points were compared on.
    pub n_holdout: usize,
}

impl fmt::Display for SearchTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let search = self.search;
        writeln!(
            f,
            "hyperparameters chosen by held-out mixture NLL on {} training pairs (give --alpha and --lr to skip):",
            self.n_holdout
        )?;
        writeln!(
            f,
            "  {:>7} {:>8} {:>12} {:>6} {:>7} {:>8}",
            "alpha", "lr", "held-out NLL", "epoch", "epochs", "seconds"
        )?;
        for (i, t) in search.trials.iter().enumerate() {
            writeln!(
                f,
                "  {:>7} {:>8.1e} {:>12.4} {:>6} {:>7} {:>8.1}{}",
                t.alpha,
                t.lr,
                t.holdout_nll,
                t.best_epoch,
                t.epochs_run,
                t.seconds,
                if i == search.chosen { "  <- kept" } else { "" }
            )?;
        }
        let total: f64 = search.trials.iter().map(|t| t.seconds).sum();
        let first = search.trials.first().map_or(0.0, |t| t.seconds);
        write!(
            f,
            "  search: {} trainings in {total:.1} s, {:.1}x the first point's ({first:.1} s)",
            search.trials.len(),
            total / first.max(1e-9)
        )
    }
}

/// The line `micro train` ends with: what was trained, on how much, kept where, written where.
pub fn trained_line(
    cfg: &crate::TrainConfig,
    model: &crate::MixtureModel,
    report: &crate::TrainReport,
    output: &std::path::Path,
) -> String {
    let held = match report.best_holdout_nll {
        Some(nll) => format!("held-out NLL {nll:.4} on {} pairs", report.n_holdout),
        None => "no held-out pairs".to_string(),
    };
    // After a search the kept run's alpha and rate are the model's, not `cfg`'s.
    let kept = model.config().training.stage1.as_ref();
    let hp = kept.map_or(cfg, |s| &s.hyperparameters);
    format!(
        "trained {} (K={}, alpha {}, lr {}) on {} pairs: {} epochs{}, kept epoch {} ({held}), {:.1} s -> {}",
        cfg.method,
        cfg.k,
        hp.alpha,
        hp.lr,
        report.n_train,
        report.epochs_run,
        if report.stopped_early { " (early stop)" } else { "" },
        report.best_epoch,
        report.seconds,
        output.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Grid;

    fn trial(alpha: f32, nll: f64, seconds: f64) -> Trial {
        Trial {
            alpha,
            lr: 2e-3,
            holdout_nll: nll,
            best_epoch: 3,
            epochs_run: 5,
            seconds,
        }
    }

    #[test]
    fn the_search_table_marks_the_kept_point_and_sums_the_time() {
        let search = Search {
            grid: Grid::default(),
            trials: vec![trial(0.5, 0.61234, 2.0), trial(0.05, 0.6, 4.0)],
            chosen: 1,
        };
        let text = SearchTable {
            search: &search,
            n_holdout: 40,
        }
        .to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].contains("on 40 training pairs"));
        assert_eq!(
            lines[2],
            "      0.5   2.0e-3       0.6123      3       5      2.0"
        );
        assert!(lines[3].ends_with("  <- kept"));
        assert_eq!(
            lines[4],
            "  search: 2 trainings in 6.0 s, 3.0x the first point's (2.0 s)"
        );
    }

    #[test]
    fn progress_lines_read_as_micro_train_prints_them() {
        let s = EpochStats {
            epoch: 2,
            train_loss: 0.5,
            holdout_nll: Some(0.25),
            lr: 1e-3,
            seconds: 1.5,
        };
        assert_eq!(
            epoch_line(&s, 10),
            "epoch 2/10: loss 0.5000, held-out NLL 0.2500, lr 1.00e-3, 1.50 s"
        );
        assert_eq!(
            trial_line(0, 6, 0.5, 2e-3),
            "search 1/6: alpha 0.5, lr 2.0e-3"
        );
        assert_eq!(
            start_line(90, 10, 3, 100),
            "training on 90 pairs, 10 held out, 3 steps per epoch, at most 100 epochs"
        );
        assert_eq!(
            done_line(&trial(0.5, 0.7, 1.5)),
            "  held-out NLL 0.7000 at epoch 3 of 5 (1.5 s)"
        );
    }

    #[test]
    fn the_trained_line_names_the_run() {
        use crate::{Method, TrainConfig};
        let (diff, prompt) = crate::bench::random_arrays(40, 3);
        let cfg = TrainConfig {
            method: Method::Single,
            k: 1,
            max_epochs: 2,
            holdout: 0.0,
            ..TrainConfig::default()
        };
        let (model, report) = crate::train(
            &micro_cache::TrainingArrays {
                meta: micro_cache::CacheMeta::default(),
                pairs: vec![micro_data::PrefPair::new("q", "a", "b"); 40],
                diff,
                prompt,
                router_input: micro_cache::RouterInput::Prompt,
            },
            &cfg,
            |_| {},
        )
        .unwrap();
        let line = trained_line(&cfg, &model, &report, std::path::Path::new("/out"));
        assert!(line.starts_with("trained single (K=1, alpha "), "{line}");
        assert!(
            line.contains("on 40 pairs: 2 epochs, kept epoch "),
            "{line}"
        );
        assert!(line.contains("(no held-out pairs)"), "{line}");
        assert!(line.ends_with(" s -> /out"), "{line}");
    }
}
