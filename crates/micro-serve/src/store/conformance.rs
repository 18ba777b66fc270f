//! The same behaviour checks run against every [`StateStore`]: SQLite always, PostgreSQL at
//! `MICRO_TEST_POSTGRES_URL` (required unless `MICRO_SKIP_POSTGRES_TESTS=1`).

use super::*;
use micro_route::Rate;
use std::sync::Arc;

/// The PostgreSQL URL the tests use; `None` only when explicitly skipped.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("MICRO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("MICRO_SKIP_POSTGRES_TESTS").as_deref() == Ok("1") => {
            eprintln!("PostgreSQL tests skipped (MICRO_SKIP_POSTGRES_TESTS=1)");
            None
        }
        _ => panic!(
            "MICRO_TEST_POSTGRES_URL is not set: run `export MICRO_TEST_POSTGRES_URL=$(scripts/start-postgres.sh)` first, or set MICRO_SKIP_POSTGRES_TESTS=1 to skip the PostgreSQL tests"
        ),
    }
}

/// A tenant name no earlier run used (the PostgreSQL database outlives test runs).
pub(crate) fn fresh_tenant(tag: &str) -> String {
    use rand::Rng;
    format!("{tag}-{}-{:08x}", now_ms(), rand::rng().random::<u32>())
}

fn margins(i: usize, k: usize) -> Vec<f32> {
    (0..k)
        .map(|j| ((i * 7 + j * 3) as f32 * 0.37).sin() * 2.0)
        .collect()
}

fn event(i: usize, k: usize) -> Feedback {
    Feedback {
        margins: margins(i, k),
        prompt: Some(format!("p{i}")),
        chosen: None,
        rejected: None,
    }
}

fn close(a: &UserState, b: &UserState) -> bool {
    a.updates == b.updates
        && a.log_weights
            .iter()
            .zip(&b.log_weights)
            .all(|(x, y)| (x - y).abs() < 1e-12)
}

async fn all_log(store: &dyn StateStore, key: &UserKey) -> Vec<LogEntry> {
    store.feedback_log(key, 0, 100_000).await.unwrap()
}

async fn log_state_and_rebuild_agree(store: Arc<dyn StateStore>) {
    let key = UserKey::new(fresh_tenant("a"), "alice");
    let new = NewUser {
        prior: vec![0.5, 0.3, 0.2],
        rate: Rate::Fixed(0.7),
        context: Some("Be brief.".into()),
    };
    assert!(store.get_user(&key).await.unwrap().is_none());
    for i in 0..5 {
        let rec = store
            .append_feedback(&key, &new, &event(i, 3))
            .await
            .unwrap();
        assert_eq!(rec.seq, i as i64 + 1);
    }
    let rec = store.get_user(&key).await.unwrap().unwrap();
    let log = all_log(store.as_ref(), &key).await;
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(log[2].feedback.prompt.as_deref(), Some("p2"));
    let want = UserState::with_rate(&new.prior, new.rate)
        .replay(log.iter().map(|e| e.feedback.margins.as_slice()));
    assert!(close(&rec.state, &want), "{:?} vs {want:?}", rec.state);
    assert_eq!(rec.state.context.as_deref(), Some("Be brief."));
    let rebuilt = store.rebuild(&key).await.unwrap().unwrap();
    assert!(close(&rebuilt.state, &want));
    assert_eq!(rebuilt.seq, 5);
    assert!(
        store.create_user(&key, &new).await.unwrap().is_none(),
        "create must not overwrite"
    );
    let err = store
        .append_feedback(&key, &new, &event(9, 4))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    assert_eq!(
        store.get_user(&key).await.unwrap().unwrap().seq,
        5,
        "a refused event is not logged"
    );
}

async fn concurrent_feedback_equals_sequential_replay(store: Arc<dyn StateStore>) {
    let key = UserKey::new(fresh_tenant("c"), "shared");
    let new = NewUser {
        prior: vec![0.25; 4],
        rate: Rate::Anytime,
        context: None,
    };
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (store, key, new) = (store.clone(), key.clone(), new.clone());
            tokio::spawn(async move {
                for i in 0..8 {
                    store
                        .append_feedback(&key, &new, &event(t * 100 + i, 4))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rec = store.get_user(&key).await.unwrap().unwrap();
    let log = all_log(store.as_ref(), &key).await;
    assert_eq!(log.len(), 128);
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=128).collect::<Vec<i64>>()
    );
    let want = UserState::with_rate(&new.prior, new.rate)
        .replay(log.iter().map(|e| e.feedback.margins.as_slice()));
    assert_eq!(rec.state.updates, 128);
    assert!(
        close(&rec.state, &want),
        "lost update: {:?} vs {want:?}",
        rec.state
    );
}

async fn tenants_and_keys_are_separate(store: Arc<dyn StateStore>) {
    let (ta, tb) = (fresh_tenant("ta"), fresh_tenant("tb"));
    let (a, b) = (UserKey::new(&ta, "bob"), UserKey::new(&tb, "bob"));
    let new = NewUser {
        prior: vec![0.5, 0.5],
        rate: Rate::Fixed(1.0),
        context: None,
    };
    store.append_feedback(&a, &new, &event(1, 2)).await.unwrap();
    assert!(store.get_user(&b).await.unwrap().is_none());
    assert!(!store.delete_user(&b).await.unwrap());
    store.append_feedback(&b, &new, &event(2, 2)).await.unwrap();
    assert!(store.delete_user(&b).await.unwrap());
    assert_eq!(store.get_user(&a).await.unwrap().unwrap().seq, 1);
    assert!(all_log(store.as_ref(), &b).await.is_empty());
    // A key hash as auth.rs stores one: sha256, hex.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        fresh_tenant("key").as_bytes(),
    ));
    let rec = KeyRecord {
        hash: hash.clone(),
        tenant: ta.clone(),
        label: "t".into(),
        created_at: now_ms(),
    };
    store.add_key(&rec).await.unwrap();
    assert_eq!(store.tenant_for_key(&hash).await.unwrap(), Some(ta));
    assert!(store.list_keys().await.unwrap().contains(&rec));
    assert_eq!(store.remove_keys(&hash[..12]).await.unwrap(), 1);
    assert_eq!(store.tenant_for_key(&hash).await.unwrap(), None);
}

/// A store for one test, and the folder that holds its file (SQLite).
struct Opened {
    store: Arc<dyn StateStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Option<Opened> {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("s.sqlite").to_str().unwrap())
        .await
        .unwrap();
    Some(Opened {
        store,
        _dir: Some(dir),
    })
}

async fn postgres() -> Option<Opened> {
    let url = postgres_url()?;
    let store = open(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    Some(Opened { store, _dir: None })
}

/// Each check as a test of each store: `mod sqlite { fn log_state_and_rebuild_agree ... }`.
/// A store is named by the function above that opens it (`None`: skipped).
macro_rules! conformance {
    ($checks:tt for $($store:ident),+) => {
        $( conformance!(@store $store $checks); )+
    };
    (@store $store:ident [$($check:ident),+ $(,)?]) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if let Some(opened) = super::$store().await {
                        super::$check(opened.store.clone()).await;
                    }
                }
            )+
        }
    };
}

conformance!([
    log_state_and_rebuild_agree,
    concurrent_feedback_equals_sequential_replay,
    tenants_and_keys_are_separate,
] for sqlite, postgres);
