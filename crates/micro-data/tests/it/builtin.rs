//! The built-in multi-user set, built from the real chatterbot corpus at its default location
//! (CI runs `scripts/fetch-assets.sh corpus` first).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use micro_data::builtin::candidates::question_key;
use micro_data::builtin::corpus::parse_topic_file;
use micro_data::builtin::raters::{informal_markers, word_count};
use micro_data::builtin::{
    build, default_corpus_dir, load_corpus, BuiltinLayout, BuiltinOptions, USER_TYPES,
};
use micro_data::{PrefPair, Split};

fn corpus_dir() -> std::path::PathBuf {
    let dir = default_corpus_dir().expect("MICRO_HOME or HOME must be set to find the corpus");
    assert!(
        dir.join("trivia.yml").is_file(),
        "chatterbot corpus missing at {}: run `scripts/fetch-assets.sh corpus` first",
        dir.display()
    );
    dir
}

fn default_pairs() -> &'static [PrefPair] {
    static PAIRS: OnceLock<Vec<PrefPair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let opts = BuiltinOptions {
            corpus_dir: Some(corpus_dir()),
            ..Default::default()
        };
        build(&opts).unwrap_or_else(|e| panic!("building the built-in set failed: {e}"))
    })
}

fn by_user(pairs: &[PrefPair]) -> BTreeMap<&str, Vec<&PrefPair>> {
    let mut m: BTreeMap<&str, Vec<&PrefPair>> = BTreeMap::new();
    for p in pairs {
        m.entry(p.user_id.as_deref().expect("user_id set"))
            .or_default()
            .push(p);
    }
    m
}

fn triple(p: &PrefPair) -> (String, String, String) {
    (p.prompt.to_text(), p.chosen.clone(), p.rejected.clone())
}

#[test]
fn the_wrote_line_counts_pairs_splits_attributes_and_users() {
    let s = micro_data::DataStats::compute(default_pairs());
    assert_eq!(
        micro_data::builtin::wrote_line(&s, Path::new("out/pairs.jsonl")),
        format!(
            "wrote {} built-in pairs (train {}, test {}, {} attributes, {} users) to out/pairs.jsonl",
            default_pairs().len(),
            s.splits.train,
            s.splits.test,
            USER_TYPES.len(),
            USER_TYPES.len()
        )
    );
    assert_eq!(s.pairs, 600 * USER_TYPES.len());
}

#[test]
fn same_seed_same_pairs_other_seed_other_pairs() {
    let a = default_pairs();
    let opts = BuiltinOptions {
        corpus_dir: Some(corpus_dir()),
        ..Default::default()
    };
    assert_eq!(a, build(&opts).expect("build").as_slice());
    let other = build(&BuiltinOptions { seed: 1, ..opts }).expect("build");
    assert_ne!(a, other.as_slice());
}

#[test]
fn users_are_balanced_and_in_both_splits() {
    let users = by_user(default_pairs());
    assert_eq!(users.len(), USER_TYPES.len());
    for (name, pairs) in &users {
        assert_eq!(pairs.len(), 600, "user {name}");
        let test = pairs
            .iter()
            .filter(|p| p.split == Some(Split::Test))
            .count();
        let train = pairs
            .iter()
            .filter(|p| p.split == Some(Split::Train))
            .count();
        assert_eq!(
            test + train,
            pairs.len(),
            "user {name}: every pair has a split"
        );
        assert!(
            (60..=180).contains(&test),
            "user {name}: {test} test pairs of {}",
            pairs.len()
        );
    }
}

#[test]
fn no_prompt_is_in_both_splits() {
    let mut split_of: BTreeMap<String, Split> = BTreeMap::new();
    for p in default_pairs() {
        let key = question_key(&p.prompt.to_text());
        let s = p.split.expect("split set");
        assert_eq!(
            *split_of.entry(key.clone()).or_insert(s),
            s,
            "prompt {key:?} in both splits"
        );
    }
    let test = split_of.values().filter(|s| **s == Split::Test).count() as f64;
    let frac = test / split_of.len() as f64;
    assert!(
        (0.15..0.25).contains(&frac),
        "test fraction of prompts {frac}"
    );
}

#[test]
fn opposite_users_reverse_each_other_on_the_same_pairs() {
    let users = by_user(default_pairs());
    for (a, b) in [
        ("concise", "detailed"),
        ("formal", "playful"),
        ("tech_fan", "culture_fan"),
    ] {
        let fwd: BTreeSet<_> = users[a].iter().map(|p| triple(p)).collect();
        let rev: BTreeSet<_> = users[b]
            .iter()
            .map(|p| (p.prompt.to_text(), p.rejected.clone(), p.chosen.clone()))
            .collect();
        assert_eq!(fwd.len(), users[a].len(), "{a} has no duplicate pairs");
        assert_eq!(fwd, rev, "{b} must reverse every {a} pair");
    }
}

#[test]
fn contexts_name_each_user_and_ratings_agree_with_labels() {
    let mut contexts = HashSet::new();
    for p in default_pairs() {
        let user = p.user_id.as_deref().expect("user");
        assert_eq!(p.attribute.as_deref(), Some(user));
        let ctx = p.context.as_deref().expect("context set");
        let expected = USER_TYPES
            .iter()
            .find(|u| u.name == user)
            .expect("known user")
            .context;
        assert_eq!(ctx, expected);
        contexts.insert(ctx);
        assert_ne!(p.chosen, p.rejected);
        let (c, r) = (
            p.chosen_rating.expect("rating"),
            p.rejected_rating.expect("rating"),
        );
        assert!(c > r, "{user}: chosen rating {c} <= rejected {r}");
    }
    assert_eq!(contexts.len(), USER_TYPES.len());
}

#[test]
fn raters_hold_on_the_texts() {
    for p in default_pairs() {
        let (cw, rw) = (word_count(&p.chosen), word_count(&p.rejected));
        let (cm, rm) = (informal_markers(&p.chosen), informal_markers(&p.rejected));
        match p.user_id.as_deref() {
            Some("concise") => assert!(2 * cw <= rw && cw + 5 <= rw && cm == rm, "{p:?}"),
            Some("detailed") => assert!(cw >= 2 * rw && cw >= rw + 5 && cm == rm, "{p:?}"),
            Some("formal") => assert!(cm < rm, "{p:?}"),
            Some("playful") => assert!(cm > rm, "{p:?}"),
            _ => {}
        }
    }
}

#[test]
fn relevant_user_prefers_the_questions_own_answer() {
    let corpus = load_corpus(&corpus_dir()).expect("corpus");
    let answers: HashSet<(String, &str)> = corpus
        .exchanges
        .iter()
        .map(|e| (question_key(&e.question), e.answer.as_str()))
        .collect();
    let relevant: Vec<_> = default_pairs()
        .iter()
        .filter(|p| p.user_id.as_deref() == Some("relevant"))
        .collect();
    for p in relevant {
        let key = question_key(&p.prompt.to_text());
        assert!(answers.contains(&(key.clone(), p.chosen.as_str())), "{p:?}");
        assert!(!answers.contains(&(key, p.rejected.as_str())), "{p:?}");
    }
}

#[test]
fn the_real_corpus_loads_with_its_odd_entries() {
    let corpus = load_corpus(&corpus_dir()).expect("corpus");
    assert_eq!(corpus.files.len(), 21);
    // The bare string in trivia.yml is the only entry without a question and an answer.
    assert_eq!(corpus.skipped, 1);
    let topics: BTreeSet<&str> = corpus.exchanges.iter().map(|e| e.topic.as_str()).collect();
    assert!(
        topics.contains("AI") && topics.contains("tech support"),
        "{topics:?}"
    );
    assert!(
        corpus.exchanges.len() > 850,
        "{} exchanges",
        corpus.exchanges.len()
    );
    assert!(
        corpus.exchanges.iter().all(|e| !e.answer.contains("  ")),
        "whitespace normalised"
    );
}

#[test]
fn odd_yaml_entries_are_kept_or_skipped_sensibly() {
    let yaml = "categories:\n- oddities\nconversations:\n\
        - - How many?\n  - 42\n\
        - - Is it?\n  - true\n\
        - - Multi\n  - first answer\n  - second turn\n  - third\n\
        - just a string\n\
        - - only a question\n\
        - - ''\n  - empty question\n\
        - - nested\n  - [a, b]\n\
        - - 'folded    spaces'\n  - 'a\n    b'\n";
    let (ex, skipped) = parse_topic_file(Path::new("odd.yml"), yaml).expect("parses");
    let got: Vec<(&str, &str)> = ex
        .iter()
        .map(|e| (e.question.as_str(), e.answer.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("How many?", "42"),
            ("Is it?", "true"),
            ("Multi", "first answer"),
            ("folded spaces", "a b")
        ]
    );
    assert!(ex.iter().all(|e| e.topic == "oddities"));
    assert_eq!(skipped, 4);
}

#[test]
fn bad_files_give_clear_errors() {
    let err = parse_topic_file(
        Path::new("bad.yml"),
        "categories: [x]\nconversations: [[a, b]\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("bad.yml"), "{err}");
    let err = parse_topic_file(Path::new("nolist.yml"), "categories: [x]\n").unwrap_err();
    assert!(err.to_string().contains("conversations"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = build(&BuiltinOptions {
        corpus_dir: Some(missing),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(&err, micro_data::DataError::NoCorpus { path, .. } if path.ends_with("nope")),
        "{err}"
    );
    assert!(
        err.to_string().contains("scripts/fetch-assets.sh corpus"),
        "{err}"
    );
    let err = build(&BuiltinOptions {
        corpus_dir: Some(dir.path().into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("scripts/fetch-assets.sh corpus"),
        "{err}"
    );
    let err = build(&BuiltinOptions {
        test_fraction: 1.0,
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, micro_data::DataError::BuiltinSetting { setting: "test fraction", value, .. } if value == 1.0),
        "{err}"
    );
    assert!(err.to_string().contains("test fraction"), "{err}");
}

fn helpsteer2_pairs() -> &'static [PrefPair] {
    static PAIRS: OnceLock<Vec<PrefPair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let opts = BuiltinOptions {
            corpus_dir: Some(corpus_dir()),
            layout: BuiltinLayout::HelpSteer2,
            ..Default::default()
        };
        build(&opts).unwrap_or_else(|e| panic!("building the HelpSteer2 layout failed: {e}"))
    })
}

fn is_stage1(p: &PrefPair) -> bool {
    p.split == Some(Split::Train) && p.context.is_none()
}

#[test]
fn helpsteer2_layout_keeps_the_default_test_split() {
    let test = |pairs: &[PrefPair]| -> Vec<PrefPair> {
        let mut t: Vec<PrefPair> = pairs
            .iter()
            .filter(|p| p.split == Some(Split::Test))
            .cloned()
            .collect();
        t.sort_by(|a, b| a.id.cmp(&b.id));
        t
    };
    assert_eq!(test(helpsteer2_pairs()), test(default_pairs()));
    let opts = BuiltinOptions {
        corpus_dir: Some(corpus_dir()),
        layout: BuiltinLayout::HelpSteer2,
        ..Default::default()
    };
    assert_eq!(
        helpsteer2_pairs(),
        build(&opts).expect("build").as_slice(),
        "deterministic by seed"
    );
}

#[test]
fn helpsteer2_stage1_pairs_have_latent_users_whose_share_follows_the_topic() {
    let stage1: Vec<&PrefPair> = helpsteer2_pairs().iter().filter(|p| is_stage1(p)).collect();
    assert!(stage1
        .iter()
        .all(|p| p.attribute.is_none() && p.user_id.is_some()));
    let topic_of = default_topics();
    let criterion_of = |user: &str| {
        USER_TYPES
            .iter()
            .find(|u| u.name == user)
            .expect("known user")
            .criterion
    };
    // Oracle: per topic, the Stage 1 pairs by user.
    let mut per_topic: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for p in &stage1 {
        let topic = topic_of[&question_key(&p.prompt.to_text())].as_str();
        let user = p.user_id.as_deref().expect("user");
        *per_topic.entry(topic).or_default().entry(user).or_default() += 1;
    }
    let (mut majority, mut total) = (0, 0);
    let mut dominated: BTreeMap<&str, usize> = BTreeMap::new();
    for users in per_topic.values() {
        // One criterion per topic: its dominant user and, rarely, that user's opposite.
        let criteria: HashSet<_> = users.keys().map(|u| criterion_of(u)).collect();
        assert_eq!(criteria.len(), 1, "{users:?}");
        let (top, n) = users.iter().max_by_key(|(_, n)| **n).expect("a user");
        *dominated.entry(top).or_default() += 1;
        majority += n;
        total += users.values().sum::<usize>();
    }
    let share = majority as f64 / total as f64;
    assert!((0.85..=0.95).contains(&share), "majority share {share}");
    for u in USER_TYPES {
        assert!(
            dominated.get(u.name).copied().unwrap_or(0) >= 1,
            "{} dominates no topic",
            u.name
        );
    }
    // Over all topics, opposite users label about as many pairs, so a prompt-blind model sits
    // near 0.5 on both.
    for (fwd, rev) in [
        ("concise", "detailed"),
        ("formal", "playful"),
        ("tech_fan", "culture_fan"),
    ] {
        let count = |u: &str| {
            stage1
                .iter()
                .filter(|p| p.user_id.as_deref() == Some(u))
                .count()
        };
        let (f, r) = (count(fwd), count(rev));
        println!("{fwd}/{rev}: {f} / {r} Stage 1 pairs");
        assert!(
            (0.35..=0.65).contains(&(f as f64 / (f + r) as f64)),
            "{fwd}: {f} of {}",
            f + r
        );
        assert!(f + r >= 300, "{fwd}/{rev}: {} Stage 1 pairs", f + r);
    }
}

#[test]
fn helpsteer2_pool_has_contexts_on_train_prompts_apart_from_stage1() {
    let pairs = helpsteer2_pairs();
    let test_prompts: HashSet<String> = pairs
        .iter()
        .filter(|p| p.split == Some(Split::Test))
        .map(|p| question_key(&p.prompt.to_text()))
        .collect();
    // A triple may be judged under two criteria (length and domain, say); within one criterion
    // the pool and Stage 1 take different triples.
    let key = |p: &PrefPair| {
        let user = p.user_id.as_deref().expect("user");
        let criterion = USER_TYPES
            .iter()
            .find(|u| u.name == user)
            .expect("known user")
            .criterion;
        let mut t = [p.chosen.clone(), p.rejected.clone()];
        t.sort();
        (criterion, p.prompt.to_text(), t)
    };
    let stage1: HashSet<_> = pairs.iter().filter(|p| is_stage1(p)).map(key).collect();
    let pool: Vec<&PrefPair> = pairs
        .iter()
        .filter(|p| p.split == Some(Split::Train) && p.context.is_some())
        .collect();
    for user in USER_TYPES {
        let mine: Vec<&&PrefPair> = pool
            .iter()
            .filter(|p| p.user_id.as_deref() == Some(user.name))
            .collect();
        assert!(
            mine.len() >= 120,
            "{}: {} pool pairs",
            user.name,
            mine.len()
        );
        for p in mine {
            assert_eq!(p.attribute.as_deref(), Some(user.name));
            assert_eq!(p.context.as_deref(), Some(user.context));
            assert!(!test_prompts.contains(&question_key(&p.prompt.to_text())));
            assert!(
                !stage1.contains(&key(p)),
                "a pool triple is also a Stage 1 triple: {p:?}"
            );
        }
    }
}

/// Each question's topic, from the corpus files (independent of the builder).
fn default_topics() -> BTreeMap<String, String> {
    let corpus = load_corpus(&corpus_dir()).expect("corpus");
    let mut m = BTreeMap::new();
    for ex in &corpus.exchanges {
        m.entry(question_key(&ex.question))
            .or_insert_with(|| ex.topic.clone());
    }
    m
}
