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
pub fn trial_line(index: usize, total: usize, point: &crate::search::Point) -> String {
    let alpha = if point.shape.method.learns_gate() {
        format!(", alpha {}", point.alpha)
    } else {
        String::new()
    };
    format!(
        "search {}/{total}: {}{alpha}, lr {:.1e}",
        index + 1,
        point.shape,
        point.lr
    )
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
            "shape and hyperparameters chosen by held-out NLL on {} training pairs:",
            self.n_holdout
        )?;
        writeln!(
            f,
            "  {:<22} {:>7} {:>8} {:>12} {:>6} {:>7} {:>8}",
            "shape", "alpha", "lr", "held-out NLL", "epoch", "epochs", "seconds"
        )?;
        for (i, t) in search.trials.iter().enumerate() {
            let mark = if i == search.chosen {
                "  <- kept"
            } else if Some(i) == search.shared_head_from {
                "  <- shared head"
            } else {
                ""
            };
            writeln!(
                f,
                "  {:<22} {:>7} {:>8.1e} {:>12.4} {:>6} {:>7} {:>8.1}{mark}",
                t.shape.map_or_else(|| "-".to_string(), |s| s.to_string()),
                t.alpha,
                t.lr,
                t.holdout_nll,
                t.best_epoch,
                t.epochs_run,
                t.seconds,
            )?;
        }
        if !search.why.is_empty() {
            writeln!(f, "  kept {}", search.why)?;
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
    // After a search the kept run's shape, alpha and rate are the model's, not `cfg`'s.
    let kept = model.config().training.stage1.as_ref();
    let hp = kept.map_or(cfg, |s| &s.hyperparameters);
    let extras = match (model.users().map(|t| t.len()), model.shared_head()) {
        (Some(u), Some(_)) => format!(" with a table of {u} users and the shared head"),
        (Some(u), None) => format!(" with a table of {u} users"),
        (None, Some(_)) => " with the shared head".to_string(),
        (None, None) => String::new(),
    };
    format!(
        "trained {} (K={}{extras}, alpha {}, lr {}) on {} pairs: {} epochs{}, kept epoch {} ({held}), {:.1} s -> {}",
        model.config().method,
        model.k(),
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
            shape: Some(crate::search::Shape {
                method: crate::Method::Micro,
                heads: 4,
                users: false,
            }),
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
            why: "micro K=4: the only shape tried".into(),
            shared_head_from: None,
        };
        let text = SearchTable {
            search: &search,
            n_holdout: 40,
        }
        .to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].contains("on 40 training pairs"));
        assert_eq!(
            lines[2],
            "  micro K=4                  0.5   2.0e-3       0.6123      3       5      2.0"
        );
        assert!(lines[3].ends_with("  <- kept"));
        assert_eq!(lines[4], "  kept micro K=4: the only shape tried");
        assert_eq!(
            lines[5],
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
        let shape = crate::search::Shape {
            method: crate::Method::Micro,
            heads: 8,
            users: true,
        };
        let point = crate::search::Point {
            shape,
            alpha: 0.5,
            lr: 2e-3,
        };
        assert_eq!(
            trial_line(0, 6, &point),
            "search 1/6: micro K=8 + users, alpha 0.5, lr 2.0e-3"
        );
        let single = crate::search::Point {
            shape: crate::search::Shape {
                method: crate::Method::Single,
                heads: 1,
                users: false,
            },
            ..point
        };
        assert_eq!(trial_line(1, 6, &single), "search 2/6: one head, lr 2.0e-3");
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
