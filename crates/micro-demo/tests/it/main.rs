//! micro-demo's own tests: a whole story on a small synthetic cache (what it trains, writes and
//! prints), and the small rules the demo's stories are made from.

use micro_cache::RouterInput;
use micro_data::builtin::BuiltinLayout;
use micro_data::Split;
use micro_demo::demo::story_for;
use micro_demo::protocol::resplit;
use micro_demo::{run_protocol, ProtocolConfig};
use micro_demo::{run_story, Observer, Silent, StoryConfig};
use micro_eval::Results;
use micro_model::synth::{generate, SynthConfig};
use micro_model::{Method, MixtureModel};

/// Everything a story tells its observer.
#[derive(Default)]
struct Recorder {
    lines: Vec<String>,
    trainings: usize,
}

impl Observer for Recorder {
    fn line(&mut self, text: &str) {
        self.lines.push(text.to_string());
    }
    fn train(&mut self, _label: &str, event: &micro_model::TrainEvent<'_>) {
        if matches!(event, micro_model::TrainEvent::Start { .. }) {
            self.trainings += 1;
        }
    }
}

fn small_story() -> StoryConfig {
    StoryConfig {
        heads: 2,
        seeds: vec![0, 1],
        grid: None,
        budget: 20,
        budgets: vec![0, 20],
        runs: 1,
        ..Default::default()
    }
}

#[test]
fn a_story_trains_every_method_per_seed_and_writes_models_results_and_report() {
    let (cache, truth) = generate(&SynthConfig {
        pairs: 2000,
        dim: 8,
        groups: 2,
        seed: 3,
        ..Default::default()
    })
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut rec = Recorder::default();
    let cfg = small_story();
    let story = run_story(&cache, &cfg, out.path(), &mut rec).unwrap();

    // Four methods x two seeds, each trained once (no search).
    assert_eq!(rec.trainings, 8);
    assert_eq!(rec.lines[0], "Stage 1 router input: pair");
    let trained: Vec<&String> = rec.lines.iter().filter(|l| l.contains(" alpha ")).collect();
    assert_eq!(trained.len(), 8, "{:?}", rec.lines);
    assert!(
        trained[0].starts_with("  single (seed 0)") && trained[0].contains("alpha 0.5 lr 0.002"),
        "{}",
        trained[0]
    );
    for seed in [0, 1] {
        let prefix = format!("seed {seed}: MiCRo ");
        assert!(
            rec.lines.iter().any(|l| l.starts_with(&prefix)),
            "{:?}",
            rec.lines
        );
        let done = format!("  budget study of seed {seed} done");
        assert!(rec.lines.contains(&done), "{:?}", rec.lines);
    }

    // The first seed's models, as the methods were trained and Stage 2 adapted them.
    let models = out.path().join("models");
    let load = |name: &str| MixtureModel::load(&models.join(name)).unwrap();
    assert_eq!(load("single").k(), 1);
    assert_eq!(load("static").config().method, Method::Static);
    let micro = load("micro");
    let stage1 = micro.config().training.stage1.as_ref().unwrap();
    assert_eq!(
        (stage1.hyperparameters.k, stage1.hyperparameters.seed),
        (2, 0)
    );
    let routed = load("micro-routed");
    let stage2 = routed.config().training.stage2.as_ref().unwrap();
    assert_eq!((stage2.pairs, stage2.tau), (2 * 20, cfg.tau));
    assert_eq!(
        stage2.selection,
        Some(micro_model::Selection::Random),
        "a story's Stage 2 draws its pairs at random"
    );
    assert!(micro.config().training.stage2.is_none());

    // results.json is what the story returned (to JSON's float precision), and the report
    // draws it.
    let results = Results::load(&out.path().join("results.json")).unwrap();
    assert_eq!(results.title, story.results.title);
    for (saved, kept) in results.methods.iter().zip(&story.results.methods) {
        assert_eq!(saved.method, kept.method);
        assert!((saved.average - kept.average).abs() < 1e-12);
    }
    let labels: Vec<&str> = results.methods.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        labels,
        ["single", "shared-base", "static", "micro", "micro (B=20)"]
    );
    let seeds = results.seeds.as_ref().unwrap();
    assert_eq!(seeds.seeds, vec![0, 1]);
    let row = |m: &str| seeds.rows.iter().find(|r| r.method == m).unwrap();
    // Two opposite groups: MiCRo's best heads serve them, a single BT model cannot.
    assert!(row("micro").best_head_average.mean > truth.bayes_average - 0.05);
    assert!(
        row("single").average.mean < 0.6,
        "{:?}",
        row("single").average
    );
    let sweep = results.sweep.as_ref().unwrap();
    assert_eq!(sweep.budgets, vec![0, 20]);
    assert_eq!(story.tables.len(), 3);
    assert!(
        story.tables[0].contains("2 training seeds"),
        "{}",
        story.tables[0]
    );
    let html = std::fs::read_to_string(&story.report).unwrap();
    assert!(html.contains(&cfg.title), "the report names the story");
}

#[test]
fn a_story_needs_a_training_seed() {
    let (cache, _) = generate(&SynthConfig {
        pairs: 100,
        dim: 4,
        groups: 2,
        ..Default::default()
    })
    .unwrap();
    let cfg = StoryConfig {
        seeds: vec![],
        ..small_story()
    };
    let out = tempfile::tempdir().unwrap();
    let e = run_story(&cache, &cfg, out.path(), &mut Silent)
        .err()
        .unwrap();
    assert!(e.to_string().contains("at least one training seed"), "{e}");
}

#[test]
fn each_layout_tells_its_story_with_its_router_input() {
    let base = small_story();
    let rpr = story_for(BuiltinLayout::Rpr, &base);
    assert_eq!(
        (rpr.name.as_str(), rpr.router_input),
        ("rpr", RouterInput::Pair)
    );
    let hs2 = story_for(BuiltinLayout::HelpSteer2, &base);
    assert_eq!(
        (hs2.name.as_str(), hs2.router_input),
        ("helpsteer2", RouterInput::Prompt)
    );
    // Everything else comes from the base.
    assert_eq!(
        (hs2.heads, hs2.seeds.clone(), hs2.budget),
        (2, vec![0, 1], 20)
    );
}

#[test]
fn each_split_of_the_protocol_is_by_prompt_and_its_own() {
    let (cache, _) = generate(&SynthConfig {
        pairs: 400,
        dim: 4,
        groups: 2,
        seed: 2,
        ..Default::default()
    })
    .unwrap();
    let text = |c: &micro_cache::EmbeddingCache, i: usize| c.pairs[i].prompt.to_text();
    let a = resplit(&cache, 0.25, 1);
    let tests = |c: &micro_cache::EmbeddingCache| c.indices(|p| p.split == Some(Split::Test));
    let test_a = tests(&a);
    // Every prompt is on one side; about a quarter of them are tested.
    for i in 0..a.len() {
        let same = (0..a.len()).filter(|&j| text(&a, j) == text(&a, i));
        assert!(same
            .map(|j| a.pairs[j].split)
            .all(|s| s == a.pairs[i].split));
    }
    assert!(test_a.len() > 50 && test_a.len() < 150, "{}", test_a.len());
    assert_eq!(test_a, tests(&resplit(&cache, 0.25, 1)));
    assert_ne!(test_a, tests(&resplit(&cache, 0.25, 2)));
}

/// Two users known only by id, each labelling by their own group's preference: the protocol
/// scores each with their own weights, split by split, and the routed reward pays.
#[test]
fn the_protocol_measures_users_known_by_id_split_by_split() {
    let (mut cache, _) = generate(&SynthConfig {
        pairs: 1600,
        dim: 6,
        groups: 2,
        seed: 4,
        ..Default::default()
    })
    .unwrap();
    for p in cache.pairs.iter_mut() {
        p.user_id = p.attribute.take();
        p.context = None;
    }
    let cfg = ProtocolConfig {
        splits: 3,
        heads: 2,
        budget: 30,
        ..ProtocolConfig::quick()
    };
    let report = run_protocol(&cache, &cfg, &mut Silent).unwrap();
    assert_eq!(report.per_split.len(), 3);
    assert_eq!(report.groups.len(), 2);
    for (user, m) in &report.per_group {
        assert_eq!(m.routed.values.len(), 3, "{user}");
    }
    let avg = &report.average;
    assert!(
        avg.routed.mean > avg.single.mean + 0.1,
        "routed {:?} single {:?}",
        avg.routed,
        avg.single
    );
    assert!(report.below_single.is_empty());
    let table = report.to_string();
    assert!(
        table.contains("mean ± standard error over 3 splits"),
        "{table}"
    );
    assert!(table
        .lines()
        .last()
        .unwrap()
        .trim_start()
        .starts_with("average"));
}
