//! Stage 2 as text, as `micro adapt` prints it: what the active choice asked, the adaptation's
//! epochs, and the test accuracy before and after (by micro-model's one accuracy rule); and the
//! pairs used, as JSON.

use crate::accuracy::{average, by_attribute, routed_credit, Accuracy};
use crate::query::ActiveBudget;
use crate::{AdaptReport, AuditReport, MergeReport};
use micro_cache::EmbeddingCache;
use micro_data::Split;
use micro_model::MixtureModel;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the active choice asked, per attribute (`k` heads).
pub fn active_choice(b: &ActiveBudget, k: usize) -> String {
    let mut out = String::from(
        "pairs chosen actively (information of each answer about the heads, in nats):",
    );
    for (attr, g) in &b.groups {
        let info: Vec<f64> = g.picks.iter().map(|p| p.information).collect();
        let (first, last) = (info.first().copied(), info.last().copied());
        let _ = write!(
            out,
            "\n  {attr:<14} {} of {} pairs; information {:.3} at the first question, {:.3} at the last, {:.2} in all",
            g.picks.len(),
            g.pool,
            first.unwrap_or(0.0),
            last.unwrap_or(0.0),
            info.iter().sum::<f64>()
        );
        let _ = write!(
            out,
            "\n  {:<14} heads before: {}; after the answers: {}",
            "",
            top_heads(&g.prior, k),
            top_heads(&g.posterior, k)
        );
    }
    out
}

/// The heads with the most weight, e.g. `h3 0.81, h1 0.12`.
pub fn top_heads(w: &[f32], k: usize) -> String {
    let mut order: Vec<usize> = (0..k.min(w.len())).collect();
    order.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
    order
        .iter()
        .take(3)
        .map(|&h| format!("h{h} {:.2}", w[h]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a: 3, b: 5`.
pub fn counts(per: &BTreeMap<String, usize>) -> String {
    per.iter()
        .map(|(a, n)| format!("{a}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The adaptation's pairs and time, then a line per epoch.
pub fn adapt_summary(report: &AdaptReport) -> String {
    let mut out = format!(
        "adapted on {} pairs ({}){} in {:.1} ms",
        report.pairs,
        counts(&report.per_attribute),
        if report.pool_pairs > 0 {
            format!(
                ", and the inputs of {} unlabelled pairs sharing their contexts",
                report.pool_pairs
            )
        } else {
            String::new()
        },
        report.seconds * 1e3
    );
    if report.in_sample > 0 {
        let _ = write!(out, "\n  {}", in_sample_note(report.in_sample));
    }
    for (e, s) in report.epochs.iter().enumerate() {
        let _ = write!(
            out,
            "\n  epoch {:>2}: cross-entropy {:.4}  label entropy {:.4}  router agrees with labels {:.1}%",
            e + 1,
            s.cross_entropy,
            s.target_entropy,
            100.0 * s.agreement
        );
    }
    out
}

/// The warning for labelled pairs judged in sample.
fn in_sample_note(n: usize) -> String {
    format!(
        "{n} labelled training pairs were judged in sample (no cross-fitted evidence kept for them: micro train keeps it unless --cross-fit 0), which favours the heads"
    )
}

/// Users listed one per line up to this many; beyond, the summary alone.
const USER_LINES: usize = 30;

/// What the adaptation by user id did: a summary, then a line per user (up to
/// [`USER_LINES`] users). Nothing for no users.
pub fn users_summary(states: &crate::UserStates) -> Vec<String> {
    let users = &states.users;
    if users.is_empty() {
        return Vec::new();
    }
    let on_head = (users.values())
        .filter(|r| matches!(r.fit, crate::Fit::Head { .. }))
        .count();
    let used: Vec<usize> = users.values().map(|r| r.used).collect();
    let (lo, hi) = (
        used.iter().min().copied().unwrap_or(0),
        used.iter().max().copied().unwrap_or(0),
    );
    let mut lines = vec![format!(
        "adapted {} users known by id on {lo}-{hi} labelled pairs each: {on_head} on a head of their own, {} on the shared reward (no head fits them better)",
        users.len(),
        users.len() - on_head
    )];
    if states.in_sample > 0 {
        lines.push(format!("  {}", in_sample_note(states.in_sample)));
    }
    if users.len() <= USER_LINES {
        lines.extend(users.values().map(|r| {
            format!(
                "  {:<16} {:>4} of {:>4} pairs: {}",
                r.user_id, r.used, r.pool, r.fit
            )
        }));
    }
    lines
}

/// Test-split accuracy per attribute of two models, each pair routed by its own prompt
/// embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct TestAccuracy {
    pub before: BTreeMap<String, Accuracy>,
    pub after: BTreeMap<String, Accuracy>,
}

/// The test accuracy of `before` and `after` on the cache's test pairs; None without any.
pub fn test_accuracy_with_users(
    before: &MixtureModel,
    after: &MixtureModel,
    users: &crate::UserStates,
    cache: &EmbeddingCache,
) -> Option<TestAccuracy> {
    let test = cache.indices(|p| p.split == Some(Split::Test));
    if test.is_empty() {
        return None;
    }
    let none = crate::UserStates::default();
    let acc = |m: &MixtureModel, u: &crate::UserStates| {
        by_attribute(cache, &test, &routed_credit(m, cache, &test, u))
    };
    Some(TestAccuracy {
        before: acc(before, &none),
        after: acc(after, users),
    })
}

/// [`test_accuracy_with_users`] without users.
pub fn test_accuracy(
    before: &MixtureModel,
    after: &MixtureModel,
    cache: &EmbeddingCache,
) -> Option<TestAccuracy> {
    test_accuracy_with_users(before, after, &crate::UserStates::default(), cache)
}

impl std::fmt::Display for TestAccuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "test accuracy    {:>8} {:>8} {:>6}",
            "stage 1", "adapted", "pairs"
        )?;
        for (attr, x) in &self.before {
            let y = self.after.get(attr).copied().unwrap_or_default();
            writeln!(
                f,
                "  {attr:<14} {:>8.4} {:>8.4} {:>6}",
                x.value(),
                y.value(),
                x.n
            )?;
        }
        write!(
            f,
            "  {:<14} {:>8.4} {:>8.4}",
            "average",
            average(&self.before),
            average(&self.after)
        )
    }
}

/// The pairs used, as JSON: row, id, attribute, and the information when chosen (active).
pub fn chosen_json(
    cache: &EmbeddingCache,
    idx: &[usize],
    picked: Option<&ActiveBudget>,
) -> serde_json::Value {
    let info: BTreeMap<usize, f64> = picked
        .map(|b| {
            b.groups
                .values()
                .flat_map(|g| g.picks.iter().map(|p| (p.row, p.information)))
                .collect()
        })
        .unwrap_or_default();
    idx.iter()
        .map(|&i| {
            let p = &cache.pairs[i];
            serde_json::json!({
                "row": i, "id": p.id, "attribute": p.group(),
                "information": info.get(&i),
            })
        })
        .collect()
}

/// A safety audit's table, as `micro heads audit` prints it (`source`: the safety set).
pub fn audit_table(report: &AuditReport, source: &str) -> String {
    let mut out = format!(
        "safety audit on {} pairs of {source} (flag below {:.2})\n  head  accuracy  mean margin",
        report.pairs, report.threshold
    );
    for h in &report.heads {
        let _ = write!(
            out,
            "\n  {:>4}  {:>8.4}  {:>11.4}{}",
            h.head,
            h.accuracy,
            h.mean_margin,
            if h.flagged { "  FLAGGED" } else { "" }
        );
    }
    let flagged = report.flagged();
    let _ = write!(out, "\n{} head(s) flagged: {flagged:?}", flagged.len());
    out
}

/// `micro train --heads auto`'s line: `k` heads merged by `report` into `merged`.
pub fn auto_heads_line(k: usize, merged: usize, report: &MergeReport) -> String {
    format!(
        "--heads auto: {k} heads -> {merged} (margins correlated above {} on {} pairs merged: {:?})",
        report.threshold, report.pairs, report.clusters
    )
}

/// A merge of `k` heads, as `micro heads merge` prints it.
pub fn merge_summary(k: usize, report: &MergeReport) -> String {
    let mut out = format!(
        "{k} heads -> {} on {} held-out pairs (threshold {:.2})",
        report.clusters.len(),
        report.pairs,
        report.threshold
    );
    for (j, c) in report.clusters.iter().enumerate() {
        let mass: f64 = c.iter().map(|&h| report.mass[h]).sum();
        let _ = write!(out, "\n  head {j}: from {c:?}  router mass {mass:.3}");
    }
    let _ = write!(
        out,
        "\nheld-out average accuracy: {:.4} before, {:.4} after",
        report.accuracy_before, report.accuracy_after
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{random_cache, random_model};
    use crate::query::{ActiveGroup, Pick};
    use crate::HeadAudit;

    #[test]
    fn heads_and_counts_read_in_order() {
        assert_eq!(
            top_heads(&[0.1, 0.7, 0.05, 0.15], 4),
            "h1 0.70, h3 0.15, h0 0.10"
        );
        let per: BTreeMap<String, usize> = [("b".to_string(), 5), ("a".to_string(), 3)].into();
        assert_eq!(counts(&per), "a: 3, b: 5");
    }

    #[test]
    fn the_active_choice_and_the_chosen_pairs_carry_the_information() {
        let cache = random_cache(4, 1, 5, 1);
        let group = ActiveGroup {
            picks: vec![
                Pick {
                    row: 2,
                    information: 0.5,
                },
                Pick {
                    row: 0,
                    information: 0.25,
                },
            ],
            pool: 5,
            prior: vec![0.5, 0.5],
            posterior: vec![0.2, 0.8],
        };
        let b = ActiveBudget {
            groups: [("attr0".to_string(), group)].into(),
            ..Default::default()
        };
        let text = active_choice(&b, 2);
        assert!(text.contains("attr0          2 of 5 pairs; information 0.500 at the first question, 0.250 at the last, 0.75 in all"), "{text}");
        assert!(
            text.ends_with("heads before: h0 0.50, h1 0.50; after the answers: h1 0.80, h0 0.20"),
            "{text}"
        );
        let rows = chosen_json(&cache, &[2, 0, 1], Some(&b));
        assert_eq!(rows[0]["row"], 2);
        assert_eq!(rows[0]["information"], 0.5);
        assert_eq!(rows[1]["information"], 0.25);
        assert!(rows[2]["information"].is_null());
        assert_eq!(rows[2]["attribute"], "attr0");
    }

    #[test]
    fn test_accuracy_needs_test_pairs_and_counts_ties_wrong() {
        let model = random_model(4, 2, None, 1);
        let mut cache = random_cache(4, 2, 6, 2);
        assert!(test_accuracy(&model, &model, &cache).is_none());
        for p in cache.pairs.iter_mut() {
            p.split = Some(Split::Test);
        }
        // Identical responses: every margin is 0, a tie, and no pair is right.
        cache.rejected = cache.chosen.clone();
        let acc = test_accuracy(&model, &model, &cache).unwrap();
        assert_eq!(acc.before.len(), 2);
        assert!(acc.before.values().all(|a| a.n == 6 && a.correct == 0.0));
        let text = acc.to_string();
        assert!(
            text.ends_with("  average          0.0000   0.0000"),
            "{text}"
        );
    }

    #[test]
    fn the_auto_heads_line_names_the_clusters() {
        let r = MergeReport {
            threshold: 0.9,
            pairs: 120,
            correlation: vec![],
            mass: vec![],
            clusters: vec![vec![0, 2], vec![1]],
            accuracy_before: 0.7,
            accuracy_after: 0.7,
        };
        assert_eq!(
            auto_heads_line(3, 2, &r),
            "--heads auto: 3 heads -> 2 (margins correlated above 0.9 on 120 pairs merged: [[0, 2], [1]])"
        );
    }

    #[test]
    fn audit_and_merge_read_as_the_heads_commands_print_them() {
        let head = |head, accuracy, flagged| HeadAudit {
            head,
            accuracy,
            mean_margin: 0.5,
            flagged,
        };
        let audit = AuditReport {
            pairs: 10,
            threshold: 0.5,
            heads: vec![head(0, 0.9, false), head(1, 0.3, true)],
        };
        let text = audit_table(&audit, "safe");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "safety audit on 10 pairs of safe (flag below 0.50)"
        );
        assert_eq!(lines[3], "     1    0.3000       0.5000  FLAGGED");
        assert_eq!(lines[4], "1 head(s) flagged: [1]");
        let merge = MergeReport {
            threshold: 0.9,
            pairs: 8,
            correlation: vec![],
            mass: vec![0.25, 0.5, 0.25],
            clusters: vec![vec![0, 2], vec![1]],
            accuracy_before: 0.75,
            accuracy_after: 0.8,
        };
        let text = merge_summary(3, &merge);
        assert!(text.starts_with("3 heads -> 2 on 8 held-out pairs (threshold 0.90)"));
        assert!(text.contains("  head 0: from [0, 2]  router mass 0.500"));
        assert!(text.ends_with("0.7500 before, 0.8000 after"));
    }
}
