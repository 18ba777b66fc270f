//! The HH-RLHF multi-user set built from the real harmless-base test file in the shared folder
//! (a missing file fails unless MICRO_SKIP_SHARED_DATA_TESTS=1: `common::shared_data`).

use micro_data::formats::{load_with, LoadOptions};
use micro_data::hh_users::{build, HhUsersOptions, USERS};
use micro_data::{PrefPair, Split};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn hh_pairs() -> Option<Vec<PrefPair>> {
    let path = crate::common::shared_data("hh-rlhf/harmless-base-test.jsonl.gz")?;
    Some(load_with(&path, &LoadOptions::default()).unwrap().pairs)
}

/// An independent reading of the rules in the module docs, on the raw text.
fn oracle(input: &[PrefPair]) -> (usize, usize) {
    let ends_q = |t: &str| t.trim_end().ends_with('?');
    let curious = input
        .iter()
        .filter(|p| {
            (ends_q(&p.chosen) && !p.rejected.contains('?'))
                || (ends_q(&p.rejected) && !p.chosen.contains('?'))
        })
        .count();
    let hedges = |t: &str| {
        let lower = t.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
        let w: Vec<&str> = lower
            .split(|c: char| !(c.is_ascii_lowercase() || c == '\''))
            .map(|w| w.trim_matches('\''))
            .filter(|w| !w.is_empty())
            .collect();
        let single = "maybe perhaps possibly probably might may could seems seem likely unlikely unsure guess suppose apparently";
        let phrases = [
            "i think",
            "not sure",
            "i don't know",
            "i believe",
            "sort of",
            "kind of",
            "it depends",
        ];
        let joined = format!(" {} ", w.join(" "));
        w.iter()
            .filter(|x| single.split(' ').any(|s| s == **x))
            .count()
            + phrases
                .iter()
                .map(|p| joined.matches(&format!(" {p} ")).count())
                .sum::<usize>()
    };
    let cautious = input
        .iter()
        .filter(|p| {
            let (a, b) = (hedges(&p.chosen), hedges(&p.rejected));
            (a >= 2 && b == 0) || (b >= 2 && a == 0)
        })
        .count();
    (curious, cautious)
}

#[test]
fn hh_users_on_the_real_file() {
    let Some(input) = hh_pairs() else { return };
    let (pairs, report) = build(&input, &HhUsersOptions::default()).unwrap();
    let (curious, cautious) = oracle(&input);
    assert_eq!(report.decisive["curious"], curious);
    assert_eq!(report.decisive["cautious"], cautious);
    assert_eq!(report.decisive["harmless"], 2307);
    let n = 450.min(curious).min(cautious);
    assert!(n >= 300, "{n} pairs per user");
    let mut by_user: BTreeMap<&str, Vec<&PrefPair>> = BTreeMap::new();
    for p in &pairs {
        by_user
            .entry(p.user_id.as_deref().unwrap())
            .or_default()
            .push(p);
    }
    assert_eq!(by_user.len(), USERS.len());
    for (user, ps) in &by_user {
        assert_eq!(ps.len(), n, "{user}: balanced");
        let test = ps.iter().filter(|p| p.split == Some(Split::Test)).count() as f64;
        assert!(
            (0.12..0.28).contains(&(test / n as f64)),
            "{user}: {test} test pairs"
        );
    }
    // Opposite users judge the very same triples in reverse.
    for (a, b) in [("curious", "direct"), ("cautious", "confident")] {
        let fwd: BTreeSet<_> = by_user[a]
            .iter()
            .map(|p| (p.prompt.to_text(), &p.chosen, &p.rejected))
            .collect();
        let rev: BTreeSet<_> = by_user[b]
            .iter()
            .map(|p| (p.prompt.to_text(), &p.rejected, &p.chosen))
            .collect();
        assert_eq!(fwd, rev, "{b} reverses {a}");
    }
    // The real label is kept as the annotators gave it.
    let real: HashMap<(String, &str), &str> = input
        .iter()
        .map(|p| ((p.prompt.to_text(), p.chosen.as_str()), p.rejected.as_str()))
        .collect();
    for p in &by_user["harmless"] {
        assert_eq!(
            real.get(&(p.prompt.to_text(), p.chosen.as_str())),
            Some(&p.rejected.as_str())
        );
    }
    // One split per conversation, for every user.
    let mut split_of: HashMap<String, Split> = HashMap::new();
    for p in &pairs {
        assert_eq!(
            *split_of
                .entry(p.prompt.to_text())
                .or_insert(p.split.unwrap()),
            p.split.unwrap()
        );
    }
    let (again, _) = build(&input, &HhUsersOptions::default()).unwrap();
    assert_eq!(pairs, again, "same seed, same set");
    let (other, _) = build(
        &input,
        &HhUsersOptions {
            seed: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(pairs, other);
}
