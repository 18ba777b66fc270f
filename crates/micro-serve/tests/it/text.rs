//! Text requests: the server embeds prompts and responses with a real backbone
//! (all-MiniLM-L6-v2; `scripts/fetch-assets.sh minilm` or MICRO_MINILM_DIR) and its answers
//! match the same embeddings computed directly.

use micro_data::Prompt;
use micro_embed::{load_backbone, BackboneOptions, Item, PromptItem};
use micro_route::Rate;
use micro_serve::bench::client::Client;
use micro_serve::bench::synthetic_model;
use micro_serve::store;
use micro_serve::{add_key, AppState, BatchOptions, Limits, Scorer};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

fn minilm_dir() -> PathBuf {
    micro_embed::located_minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn text_requests_are_embedded_by_the_backbone() {
    let dir = minilm_dir();
    let direct = load_backbone(&dir, &BackboneOptions::default()).unwrap();
    let model = synthetic_model(direct.dim(), 3, 9);
    let served = load_backbone(&dir, &BackboneOptions::default()).unwrap();
    let scorer =
        Scorer::with_backbone(model.clone(), Arc::from(served), BatchOptions::default()).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (server, key) = rt.block_on(async {
        let store = store::open(tmp.path().join("s.sqlite").to_str().unwrap())
            .await
            .unwrap();
        let (key, _) = add_key(store.as_ref(), "acme", "t").await.unwrap();
        let state = Arc::new(AppState::new(
            scorer,
            store,
            Limits::default(),
            Rate::Fixed(1.0),
        ));
        (micro_serve::start(state, "127.0.0.1:0").await.unwrap(), key)
    });
    let mut c = Client::new(server.addr, Some(&key));

    let prompt = Prompt::Text("How do I boil an egg?".into());
    let context = "Be brief.";
    let responses = [
        "Boil it for nine minutes.",
        "Eggs are laid by hens and many other birds.",
    ];
    let body = json!({"prompt": "How do I boil an egg?", "context": context, "responses": responses, "head_rewards": true});
    let r = c.post("/v1/score", &body.to_string()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();

    let x = direct
        .embed_prompts(&[PromptItem {
            prompt: &prompt,
            context: Some(context),
        }])
        .unwrap()
        .features;
    let items: Vec<Item<'_>> = responses
        .iter()
        .map(|a| Item {
            prompt: &prompt,
            context: Some(context),
            response: a,
        })
        .collect();
    let h = direct.embed_responses(&items).unwrap().features;
    let w = model.weights(x.row(0));
    for k in 0..3 {
        assert!(
            (v["weights"][k].as_f64().unwrap() - w[k] as f64).abs() < 1e-5,
            "{v}"
        );
    }
    for i in 0..2 {
        let want: f32 = model
            .rewards(h.row(i))
            .iter()
            .zip(&w)
            .map(|(r, w)| r * w)
            .sum();
        assert!(
            (v["rewards"][i].as_f64().unwrap() - want as f64).abs() < 1e-5,
            "{v}"
        );
    }

    // Feedback in text: the logged margins are the heads on h(chosen) - h(rejected).
    let fb = json!({"prompt": "How do I boil an egg?", "chosen": responses[0], "rejected": responses[1]});
    let r = c.post("/v1/users/ann/feedback", &fb.to_string()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let log = c.get("/v1/users/ann/feedback").unwrap().json();
    let items: Vec<Item<'_>> = responses
        .iter()
        .map(|a| Item {
            prompt: &prompt,
            context: None,
            response: a,
        })
        .collect();
    let h = direct.embed_responses(&items).unwrap().features;
    let diff: Vec<f32> = h.row(0).iter().zip(h.row(1)).map(|(a, b)| a - b).collect();
    let want = model.margins(&diff);
    for k in 0..3 {
        assert!(
            (log["entries"][0]["margins"][k].as_f64().unwrap() - want[k] as f64).abs() < 1e-5,
            "{log}"
        );
    }
    assert_eq!(log["entries"][0]["chosen"], responses[0]);
    rt.block_on(server.stop()).unwrap();
}
