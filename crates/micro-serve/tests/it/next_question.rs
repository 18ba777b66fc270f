//! `POST /v1/users/{user_id}/next-question` end to end: the pair chosen is micro-route's
//! `next_question` on the same margins and the user's stored weights, feedback on the asked
//! pair moves the weights the next choice uses, bad candidates get JSON 4xx bodies, and an
//! unknown user is 404 as in `/v1/score`. The simulated users are in next_question_users.rs.

use crate::common::{BagBackbone, Fixture};
use micro_data::Prompt;
use micro_embed::{Backbone, Item};
use micro_route::query::{information, next_question};
use micro_route::Rate;
use micro_serve::bench::client::Client;
use micro_serve::bench::{random_vec, synthetic_model};
use micro_serve::MAX_CANDIDATES;
use micro_serve::{BatchOptions, Limits, Scorer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use crate::question::*;

#[test]
fn the_chosen_pair_is_micro_routes_next_question_on_the_same_margins_and_weights() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = embedding_server(&f, Limits::default(), Rate::Fixed(0.5));
    let mut c = Client::new(server.addr, Some(&key));
    let mut rng = StdRng::seed_from_u64(1);
    let put = json!({"prior": [1.0, 2.0, 3.0, 4.0, 0.0]}).to_string();
    assert_eq!(
        c.request("PUT", "/v1/users/ann", Some(&put))
            .unwrap()
            .status,
        201
    );
    for _ in 0..3 {
        let fb = json!({"chosen_embedding": random_vec(&mut rng, DIM), "rejected_embedding": random_vec(&mut rng, DIM)});
        ok(c.post("/v1/users/ann/feedback", &fb.to_string()).unwrap());
    }
    let state = stored_state(&mut c, "ann");
    for round in 0..4 {
        let (cands, first, second) = random_pairs(&mut rng, 40, 4.0);
        let margins = expert_margins(&model(), &first, &second);
        for seed in [None, Some(0u64), Some(99)] {
            let mut body = json!({"candidates": cands});
            if let Some(s) = seed {
                body["seed"] = json!(s);
            }
            let v = ask(&mut c, "ann", &body);
            let want = next_question(&state, &margins, seed.unwrap_or(0)).unwrap();
            assert_eq!(v["index"], want.index, "round {round} seed {seed:?}: {v}");
            assert!((v["information"].as_f64().unwrap() - want.information).abs() < 1e-9);
            assert!((v["p_chosen"].as_f64().unwrap() - want.p_first).abs() < 1e-9);
            assert_eq!(v["random"], false);
            assert_eq!(v["candidates"], 40);
            assert_eq!(v["updates"], 3);
            let w = f64s(&v["weights"]);
            for (got, l) in w.iter().zip(&state.log_weights) {
                assert!((got - l.exp()).abs() < 1e-6);
            }
            // The information is the rule's on the chosen row.
            let i = want.index;
            let wf: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
            assert!(
                (information(&wf, &margins[i * E..(i + 1) * E]) - want.information).abs() < 1e-12
            );
            // The same request, the same answer.
            assert_eq!(ask(&mut c, "ann", &body), v);
        }
    }
    f.stop(server);
}

#[test]
fn feedback_on_the_asked_pair_changes_the_weights_the_next_choice_uses() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = embedding_server(&f, Limits::default(), Rate::Fixed(0.5));
    let mut c = Client::new(server.addr, Some(&key));
    let mut rng = StdRng::seed_from_u64(2);
    assert_eq!(
        c.request("PUT", "/v1/users/bo", Some("{}")).unwrap().status,
        201
    );
    let (cands, first, second) = random_pairs(&mut rng, 30, 4.0);
    let margins = expert_margins(&model(), &first, &second);
    let body = json!({"candidates": cands, "seed": 3});
    let before = ask(&mut c, "bo", &body);
    assert_eq!(before["updates"], 0);
    // A new user's prior: half on the shared gate, the rest even over the heads.
    let prior = micro_route::Experts::new(K, None).prior();
    for (w, p) in f64s(&before["weights"]).iter().zip(&prior) {
        assert!((w - p).abs() < 1e-6, "a new user's prior: {before}");
    }
    // The asked candidate goes back as feedback unchanged (the user preferred `chosen`)...
    let i = before["index"].as_u64().unwrap() as usize;
    let fb = ok(c
        .post("/v1/users/bo/feedback", &cands[i].to_string())
        .unwrap());
    let after = ask(&mut c, "bo", &body);
    assert_eq!(after["updates"], 1);
    assert_eq!(after["weights"], fb["weights"]);
    assert_ne!(after["weights"], before["weights"]);
    let state = stored_state(&mut c, "bo");
    let want = next_question(&state, &margins, 3).unwrap();
    assert_eq!(after["index"], want.index);
    assert!((after["information"].as_f64().unwrap() - want.information).abs() < 1e-9);
    // ... the answered pair now tells less than it did.
    let wf: Vec<f64> = state.log_weights.iter().map(|l| l.exp()).collect();
    let row = &margins[i * E..(i + 1) * E];
    assert!(information(&wf, row) < before["information"].as_f64().unwrap());
    // ... or swapped (the user preferred the other response).
    let j = after["index"].as_u64().unwrap() as usize;
    let swapped = json!({"chosen_embedding": cands[j]["rejected_embedding"], "rejected_embedding": cands[j]["chosen_embedding"]});
    let fb = ok(c
        .post("/v1/users/bo/feedback", &swapped.to_string())
        .unwrap());
    let third = ask(&mut c, "bo", &body);
    assert_eq!(third["updates"], 2);
    assert_eq!(third["weights"], fb["weights"]);
    assert_ne!(third["weights"], after["weights"]);
    f.stop(server);
}

#[test]
fn below_the_information_floor_the_pair_is_drawn_at_random() {
    let f = Fixture::new();
    let key = f.key("acme");
    let server = embedding_server(&f, Limits::default(), Rate::Fixed(0.5));
    let mut c = Client::new(server.addr, Some(&key));
    let mut rng = StdRng::seed_from_u64(4);
    c.request("PUT", "/v1/users/cy", Some("{}")).unwrap();
    // Each pair compares a response with itself: no answer can tell the heads apart.
    let cands: Vec<Value> = (0..20)
        .map(|_| {
            let a = random_vec(&mut rng, DIM);
            json!({"chosen_embedding": a, "rejected_embedding": a})
        })
        .collect();
    let mut picks = Vec::new();
    for seed in 0..12u64 {
        let body = json!({"candidates": cands, "seed": seed});
        let v = ask(&mut c, "cy", &body);
        assert_eq!(v["random"], true, "{v}");
        assert_eq!(v["information"].as_f64().unwrap(), 0.0);
        assert!((v["p_chosen"].as_f64().unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(ask(&mut c, "cy", &body)["index"], v["index"]);
        picks.push(v["index"].as_u64().unwrap());
    }
    picks.sort_unstable();
    picks.dedup();
    assert!(picks.len() > 3, "{picks:?}");
    f.stop(server);
}

#[test]
fn bad_candidates_get_json_4xx_bodies_that_say_what_is_wrong() {
    let f = Fixture::new();
    let key = f.key("acme");
    let limits = Limits {
        max_texts: 3,
        max_text_chars: 10,
        ..Limits::default()
    };
    let server = embedding_server(&f, limits, Rate::Fixed(0.5));
    let mut c = Client::new(server.addr, Some(&key));
    let mut rng = StdRng::seed_from_u64(5);
    c.request("PUT", "/v1/users/u", Some("{}")).unwrap();
    let v = |rng: &mut StdRng| random_vec(rng, DIM);
    let pair = |rng: &mut StdRng| json!({"chosen_embedding": v(rng), "rejected_embedding": v(rng)});
    let good = pair(&mut rng);
    let too_many: Vec<Value> = vec![good.clone(); MAX_CANDIDATES + 1];
    let mut huge = good.clone();
    huge["chosen_embedding"] = json!(vec![3e38f32; DIM]);
    huge["rejected_embedding"] = json!(vec![-3e38f32; DIM]);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"candidates": []}), 422, "`candidates` is empty"),
        (json!({"candidates": too_many}), 422, "the limit is 1024"),
        (
            json!({"candidates": [good, {"chosen_embedding": v(&mut rng), "rejected_embedding": random_vec(&mut rng, DIM - 1)}]}),
            422,
            "`candidates[1].rejected_embedding` has 7 values",
        ),
        (
            json!({"candidates": [{"chosen_embedding": v(&mut rng), "rejected_embedding": [1e39, 0, 0, 0, 0, 0, 0, 0]}]}),
            422,
            "`candidates[0].rejected_embedding`[0] is not a finite f32",
        ),
        (
            json!({"candidates": [good, huge]}),
            422,
            "of candidates[1] are not finite",
        ),
        (json!({}), 422, "candidates"),
        (json!({"candidates": [good], "bogus": 1}), 422, "bogus"),
        (
            json!({"candidates": [{"a_embedding": v(&mut rng), "b_embedding": v(&mut rng)}]}),
            422,
            "a_embedding",
        ),
        (
            json!({"candidates": [good, {"chosen_embedding": v(&mut rng)}]}),
            400,
            "candidates[1]: give both `chosen_embedding` and `rejected_embedding`",
        ),
        (
            json!({"candidates": [{"chosen": "x", "rejected": "y", "chosen_embedding": v(&mut rng), "rejected_embedding": v(&mut rng)}]}),
            400,
            "not both",
        ),
        (
            json!({"candidates": [{"prompt": "p"}]}),
            400,
            "candidates[0]: give the responses",
        ),
        (
            json!({"candidates": [{"chosen": "x", "rejected": "y"}]}),
            400,
            "--backbone",
        ),
        (
            json!({"candidates": [{"chosen": "x", "rejected": "y"}, {"chosen": "x", "rejected": "z"}]}),
            413,
            "--max-texts",
        ),
        (
            json!({"candidates": [{"chosen": "far longer than ten", "rejected": "y"}]}),
            413,
            "`candidates[0].chosen` has 19 characters",
        ),
        (
            json!({"candidates": [{"prompt": "far longer than ten", "chosen_embedding": v(&mut rng), "rejected_embedding": v(&mut rng)}]}),
            413,
            "candidates[0].prompt",
        ),
        (
            json!({"candidates": [good], "context": "far longer than ten"}),
            413,
            "`context`",
        ),
        (json!({"candidates": [good], "seed": -1}), 422, "seed"),
    ];
    for (body, status, needle) in cases {
        let r = c
            .post("/v1/users/u/next-question", &body.to_string())
            .unwrap();
        let text = body.to_string();
        assert_eq!(
            r.status,
            status,
            "{}: {}",
            &text[..text.len().min(80)],
            r.body
        );
        assert!(
            r.json()["error"]["code"].is_string() && error_message(&r).contains(needle),
            "{:?} lacks {needle:?}",
            r.body
        );
    }
    f.stop(server);
}

#[test]
fn an_unknown_user_is_404_as_in_the_score_route_and_is_not_created() {
    let f = Fixture::new();
    let (acme, other) = (f.key("acme"), f.key("other"));
    let server = embedding_server(&f, Limits::default(), Rate::Fixed(0.5));
    let mut c = Client::new(server.addr, Some(&acme));
    let mut rng = StdRng::seed_from_u64(6);
    let (cands, _, _) = random_pairs(&mut rng, 3, 1.0);
    let body = json!({"candidates": cands}).to_string();
    let score = json!({"user_id": "nobody", "response_embeddings": [random_vec(&mut rng, DIM)]});
    let s = c.post("/v1/score", &score.to_string()).unwrap();
    let q = c.post("/v1/users/nobody/next-question", &body).unwrap();
    assert_eq!((s.status, q.status), (404, 404), "{}", q.body);
    assert_eq!(q.json()["error"]["code"], s.json()["error"]["code"]);
    assert!(
        error_message(&q).starts_with(&error_message(&s)),
        "{}",
        q.body
    );
    assert!(error_message(&q).contains("PUT /v1/users/"));
    assert_eq!(c.get("/v1/users/nobody").unwrap().status, 404);
    // Another tenant's user is as unknown; bad input about an unknown user is still 404 only
    // once the input is well-formed.
    c.request("PUT", "/v1/users/ann", Some("{}")).unwrap();
    assert_eq!(
        c.post("/v1/users/ann/next-question", &body).unwrap().status,
        200
    );
    let mut o = Client::new(server.addr, Some(&other));
    assert_eq!(
        o.post("/v1/users/ann/next-question", &body).unwrap().status,
        404
    );
    let mut anon = Client::new(server.addr, None);
    assert_eq!(
        anon.post("/v1/users/ann/next-question", &body)
            .unwrap()
            .status,
        401
    );
    let empty = json!({"candidates": []}).to_string();
    assert_eq!(
        c.post("/v1/users/nobody/next-question", &empty)
            .unwrap()
            .status,
        422
    );
    f.stop(server);
}

#[test]
fn text_candidates_are_embedded_as_feedback_embeds_them() {
    const TD: usize = 24;
    let f = Fixture::new();
    let key = f.key("acme");
    let backbone = BagBackbone::new(TD, Duration::ZERO);
    // The bag features have norm 1: scale the heads so that their margins are a few nats.
    let base = synthetic_model(TD, K, 21);
    let heads = base.heads();
    let scaled = micro_cache::Matrix::new(
        heads.rows,
        heads.cols,
        heads.data.iter().map(|x| x * 30.0).collect(),
    );
    let model =
        micro_model::MixtureModel::new(base.config().clone(), scaled, base.gate().clone()).unwrap();
    let scorer = Scorer::with_backbone(
        model.clone(),
        backbone.clone() as Arc<dyn Backbone>,
        BatchOptions::default(),
    )
    .unwrap();
    let server = start(&f, scorer, Limits::default(), Rate::Fixed(0.5));
    let mut c = Client::new(server.addr, Some(&key));
    c.request("PUT", "/v1/users/dee", Some("{}")).unwrap();
    let context = "I like short answers.";
    let prompts = ["How do I boil an egg?", "Name a colour."];
    let pairs = [
        (
            0,
            "Nine minutes.",
            "Eggs come from hens, and boiling them takes a while.",
        ),
        (
            1,
            "Blue.",
            "There are many colours, for example blue, red and green.",
        ),
        (0, "Put it in boiling water.", "Nine minutes."),
        (1, "Red", "Green, I think, or maybe teal."),
    ];
    let cands: Vec<Value> = pairs
        .iter()
        .map(|(p, a, b)| json!({"prompt": prompts[*p], "chosen": a, "rejected": b}))
        .collect();
    let v = ask(
        &mut c,
        "dee",
        &json!({"candidates": cands, "context": context, "seed": 1}),
    );
    // The same features computed directly: h(x, c, a) for each response.
    let prompt_values: Vec<Prompt> = prompts
        .iter()
        .map(|p| Prompt::Text(p.to_string()))
        .collect();
    let items: Vec<Item<'_>> = pairs
        .iter()
        .flat_map(|(p, a, b)| {
            [a, b].map(|r| Item {
                prompt: &prompt_values[*p],
                context: Some(context),
                response: r,
            })
        })
        .collect();
    let h = backbone.embed_responses(&items).unwrap().features;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for i in 0..pairs.len() {
        first.extend_from_slice(h.row(2 * i));
        second.extend_from_slice(h.row(2 * i + 1));
    }
    let margins = expert_margins(&model, &first, &second);
    let state = stored_state(&mut c, "dee");
    let want = next_question(&state, &margins, 1).unwrap();
    assert_eq!(v["random"], false, "{v}");
    assert_eq!(v["index"], want.index, "{v}");
    assert!((v["information"].as_f64().unwrap() - want.information).abs() < 1e-6);
    // Mixed with an embedding candidate, the text ones keep their answers.
    let mut mixed = cands.clone();
    mixed.push(json!({"chosen_embedding": vec![0.0; TD], "rejected_embedding": vec![0.0; TD]}));
    let m = ask(
        &mut c,
        "dee",
        &json!({"candidates": mixed, "context": context, "seed": 1}),
    );
    assert_eq!(m["index"], v["index"]);
    // Sent back as feedback (with the same context), the pair is logged with the same heads'
    // margins (the gate's then reads the pair's prompt and context, as feedback routes them).
    let i = want.index;
    let mut fb = cands[i].clone();
    fb["context"] = json!(context);
    ok(c.post("/v1/users/dee/feedback", &fb.to_string()).unwrap());
    let log = ok(c.get("/v1/users/dee/feedback").unwrap());
    let logged = f64s(&log["entries"][0]["margins"]);
    assert_eq!(logged.len(), E);
    for (got, want) in logged.iter().zip(&margins[i * E..i * E + K]) {
        assert!((got - *want as f64).abs() < 1e-4, "{logged:?}");
    }
    f.stop(server);
}
