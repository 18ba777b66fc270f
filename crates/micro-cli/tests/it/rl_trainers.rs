//! RL trainers call `micro serve --backbone all-MiniLM-L6-v2` unchanged, over loopback:
//! OpenRLHF's own reward client (from the `openrlhf` PyPI package) with the key in the URL,
//! slime's request shape, and the Python client's OpenRLHF, verl and TRL entry points. Each
//! reward equals `/v1/score`'s for the same conversation, response and user or context, and
//! two contexts give two rewards.
//!
//! Needs python3 and what `scripts/setup.sh` installs into `$MICRO_HOME/python` (aiohttp and
//! OpenRLHF's sources); MICRO_SKIP_PYTHON_TESTS=1 skips the Python parts.

use crate::common::{add_key, listening_address};
use micro_serve::bench::client::Client;
use micro_serve::bench::synthetic_model;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_micro");
const K: usize = 4;
const PROMPT: &str = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n";
const RESPONSE: &str = "Boil it for nine minutes, then cool it in cold water.";
const BRIEF: &str = "I like short answers.";
const DETAILED: &str = "I want every detail explained.";

fn messages() -> Value {
    json!([{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "How do I boil an egg?"}])
}

fn minilm_dir() -> PathBuf {
    micro_embed::located_minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// `$MICRO_HOME/python` with aiohttp and OpenRLHF's sources, or `None` when the Python tests
/// are skipped on purpose.
fn python_packages() -> Option<PathBuf> {
    if std::env::var("MICRO_SKIP_PYTHON_TESTS").as_deref() == Ok("1") {
        return None;
    }
    let dir = micro_data::home::micro_home()
        .expect("set MICRO_HOME or HOME")
        .join("python");
    assert!(
        dir.join("aiohttp").is_dir() && dir.join("openrlhf/utils/agent.py").is_file(),
        "aiohttp and openrlhf are not in {}: run `bash scripts/setup.sh` (or set MICRO_SKIP_PYTHON_TESTS=1)",
        dir.display()
    );
    Some(dir)
}

/// A random K-head model over MiniLM's 384-d features, with heads and router output scaled
/// up: at initialisation scale two contexts' rewards differ by about 1e-5, too close to float
/// noise to show that the context is used.
fn sharp_model() -> micro_model::MixtureModel {
    let mut m = synthetic_model(384, K, 17);
    m.scale_heads(20.0);
    if let Some(mut r) = m.router().cloned() {
        r.w2.iter_mut().for_each(|v| *v *= 20.0);
        m.set_gate(micro_model::Gate::Router(r)).unwrap();
    }
    m
}

/// `micro serve` with the MiniLM backbone and [`sharp_model`], killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    key: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        sharp_model().save(&model).unwrap();
        let db = dir.path().join("state.sqlite").display().to_string();
        let key = add_key("rl", &db);
        let mut child = Command::new(BIN)
            .args(["serve", "--model", model.to_str().unwrap(), "--db", &db])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--backbone",
                minilm_dir().to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn micro serve");
        let addr = listening_address(&mut child);
        Server {
            child,
            addr,
            key,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.addr, Some(&self.key))
    }

    /// `/v1/score`'s reward for the conversation and `response`, with `who` merged in.
    fn v1_reward(&self, response: &str, who: Value) -> f64 {
        let mut body = json!({"prompt": messages(), "responses": [response]});
        body.as_object_mut()
            .unwrap()
            .extend(who.as_object().unwrap().clone());
        let r = self.client().post("/v1/score", &body.to_string()).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["rewards"][0].as_f64().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 + 1e-4 * want.abs(),
        "{what}: {got} vs /v1/score {want}"
    );
}

fn assert_differ(a: f64, b: f64) {
    assert!(
        (a - b).abs() > 1e-3,
        "two contexts gave the same reward: {a} vs {b}"
    );
}

/// Runs OpenRLHF's `SingleTurnAgentExecutor` with `remote` as its `remote_rm_url` on three
/// samples (two contexts, no label) and checks each reward against `/v1/score`.
fn openrlhf_executor_matches_v1_score(
    server: &Server,
    packages: &Path,
    remote: &str,
    env: &[(&str, String)],
) {
    let response = format!("{RESPONSE}<|im_end|>");
    let cases = json!([
        {"prompt": PROMPT, "response": response, "label": json!({"context": BRIEF}).to_string()},
        {"prompt": PROMPT, "response": response, "label": json!({"context": DETAILED}).to_string()},
        {"prompt": PROMPT, "response": response, "label": ""},
    ]);
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rl_openrlhf_harness.py");
    let out = Command::new("python3")
        .arg(&harness)
        .arg(packages)
        .arg(remote)
        .arg(cases.to_string())
        .env("PYTHONPATH", packages)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("python3 is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the harness failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // OpenRLHF's logger also writes to stdout: the results are the last line.
    let results: Vec<Value> = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("harness output is not JSON ({e}): {stdout}"));
    let reward = |i: usize| {
        results[i]["reward"][0]
            .as_f64()
            .unwrap_or_else(|| panic!("OpenRLHF got no reward: {}\n{stdout}", results[i]))
    };
    let brief = server.v1_reward(RESPONSE, json!({"context": BRIEF}));
    assert_close(reward(0), brief, "brief");
    let detailed = server.v1_reward(RESPONSE, json!({"context": DETAILED}));
    assert_close(reward(1), detailed, "detailed");
    assert_close(reward(2), server.v1_reward(RESPONSE, json!({})), "no label");
    assert_differ(reward(0), reward(1));
    assert_eq!(results[0]["scores"], results[0]["reward"]);
    let logs = results[0]["extra_logs"].as_object().unwrap();
    let last = format!("micro_weight{}", K - 1);
    assert!(
        logs.contains_key("micro_head0") && logs.contains_key(&last),
        "{logs:?}"
    );
}

#[test]
fn openrlhfs_own_client_gets_micro_rewards_with_the_key_in_the_url() {
    let Some(packages) = python_packages() else {
        return;
    };
    let server = Server::start();
    let url = format!("http://micro:{}@{}/get_reward", server.key, server.addr);
    openrlhf_executor_matches_v1_score(&server, &packages, &url, &[]);
}

#[test]
fn openrlhfs_own_client_loads_the_python_clients_reward_func_file() {
    let Some(packages) = python_packages() else {
        return;
    };
    let server = Server::start();
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python");
    let file = client.join("micro_client/openrlhf.py");
    // The file imports micro_client, as from an installed package.
    let path = std::env::join_paths([packages.clone(), client]).unwrap();
    let env = [
        ("PYTHONPATH", path.to_string_lossy().into_owned()),
        ("MICRO_URL", format!("http://{}", server.addr)),
        ("MICRO_API_KEY", server.key.clone()),
    ];
    openrlhf_executor_matches_v1_score(&server, &packages, file.to_str().unwrap(), &env);
}

#[test]
fn slimes_shape_gets_a_bare_number_equal_to_v1_score() {
    let server = Server::start();
    let mut c = server.client();
    let mut rewards = Vec::new();
    for context in [BRIEF, DETAILED] {
        // slime's remote_rm payload: prompt, response, label.
        let body = json!({"prompt": PROMPT, "response": format!("{RESPONSE}<|im_end|>"), "label": json!({"context": context}).to_string()});
        let r = c.post("/slime/reward", &body.to_string()).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let got: f64 = r.body.trim().parse().expect("the body is a bare number");
        assert_close(
            got,
            server.v1_reward(RESPONSE, json!({"context": context})),
            context,
        );
        rewards.push(got);
    }
    assert_differ(rewards[0], rewards[1]);
}

/// Runs one test class of the Python client's suite against `server`.
fn python_client_test(class: &str) {
    let Some(_) = python_packages() else {
        return;
    };
    let server = Server::start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python");
    let out = Command::new("python3")
        .args([
            "-m",
            "unittest",
            "-v",
            &format!("tests.test_entry_points.{class}"),
        ])
        .current_dir(&root)
        .env("PYTHONPATH", &root)
        .env("MICRO_URL", format!("http://{}", server.addr))
        .env("MICRO_API_KEY", &server.key)
        .output()
        .expect("python3 is needed for this test");
    assert!(
        out.status.success(),
        "{class} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_client_openrlhf_reward_func() {
    python_client_test("TestOpenRlhfRewardFunc");
}

#[test]
fn python_client_verl_compute_score() {
    python_client_test("TestVerlComputeScore");
}

#[test]
fn python_client_trl_reward_func() {
    python_client_test("TestTrlRewardFunc");
}

#[test]
fn python_client_raises_the_servers_error() {
    python_client_test("TestErrors");
}

/// The Python client's own tests, which need no micro server: retries (every 5xx, no other
/// 4xx than 408 and 429), the trainer entry points' label columns and keys against a stub
/// client, `import micro_client` exposing them, and `pip install` leaving the tree clean.
#[test]
fn python_client_unit_tests() {
    if std::env::var("MICRO_SKIP_PYTHON_TESTS").as_deref() == Ok("1") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python");
    let out = Command::new("python3")
        .args(["-m", "unittest", "-v", "tests.test_client"])
        .current_dir(&root)
        .env("PYTHONPATH", &root)
        .output()
        .expect("python3 is needed for this test");
    assert!(
        out.status.success(),
        "the Python client's tests failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
