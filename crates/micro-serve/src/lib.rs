//! The MiCRo reward server: personalised rewards over HTTP, with per-user online adaptation
//! (Hedge) persisted in SQLite or PostgreSQL.
//!
//! The principal type is [`AppState`] (the model [`Scorer`], a [`StateStore`], limits and
//! metrics), served by [`start`] or [`serve`]. The API is documented in `docs/openapi.json`:
//! micro's own `/v1` routes (their bodies in [`api`]), and the shapes RL trainers call a
//! remote reward model with ([`OpenRlhfRequest`] for OpenRLHF's `/get_reward`,
//! [`SlimeRequest`] for slime's `/slime/reward`). Every route that scores goes through one
//! function (`score.rs`). With the `text` feature (on by default) the server also embeds text
//! with a backbone from micro-embed, and concurrent text requests share backbone passes
//! ([`BatchOptions`]); without it, it scores the embeddings clients send.
//!
//! ```
//! use micro_serve::bench::{client::Client, synthetic_model};
//! use micro_serve::{add_key, store, AppState, Limits, Scorer};
//! use std::sync::Arc;
//! let dir = tempfile::tempdir().unwrap();
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let (server, key) = rt.block_on(async {
//!     let store = store::open(dir.path().join("state.sqlite").to_str().unwrap()).await.unwrap();
//!     let (key, _) = add_key(store.as_ref(), "acme", "docs").await.unwrap();
//!     let scorer = Scorer::new(synthetic_model(4, 2, 1));
//!     let state = Arc::new(AppState::new(scorer, store, Limits::default(), micro_route::Rate::Anytime));
//!     (micro_serve::start(state, "127.0.0.1:0").await.unwrap(), key)
//! });
//! let mut client = Client::new(server.addr, Some(&key));
//! let body = r#"{"chosen_embedding": [1, 0, 0, 0], "rejected_embedding": [0, 1, 0, 0]}"#;
//! let reply = client.post("/v1/users/alice/feedback", body).unwrap();
//! assert_eq!(reply.status, 200, "{}", reply.body);
//! assert_eq!(reply.json()["updates"], 1);
//! let reply = client.post("/v1/score", r#"{"user_id": "alice", "response_embeddings": [[1, 0, 0, 0], [0, 1, 0, 0]]}"#).unwrap();
//! let p = reply.json()["pairs"][0]["p"].as_f64().unwrap();
//! assert!(p > 0.0 && p < 1.0);
//! rt.block_on(server.stop()).unwrap();
//! ```

pub mod api;
mod auth;
#[cfg(feature = "text")]
mod batch;
#[cfg(any(test, feature = "bench"))]
pub mod bench;
mod chat;
mod conn;
mod error;
mod extract;
mod handlers;
mod metrics;
mod options;
mod question;
mod rl;
mod score;
mod scorer;
mod seed;
mod server;
mod state;
pub mod store;
mod texts;

pub use auth::{add_key, KeyError, KEY_CACHE_TTL};
#[cfg(feature = "text")]
pub use batch::BatchOptions;
pub use conn::{bind, open_files_for, serve_router, shutdown_signal, ConnLimits};
pub use error::ApiError;
pub use handlers::OPENAPI;
#[cfg(feature = "text")]
pub use options::backbone_for;
pub use options::{OpenError, StoreOptions};
pub use question::MAX_CANDIDATES;
pub use rl::{OpenRlhfRequest, OpenRlhfResponse, SlimeRequest};
pub use scorer::{Scorer, ScorerError};
pub use seed::{import_users, Imported};
pub use server::{request_timeout, router, serve};
pub use state::{AppState, Limits, ZeroLimit};
pub use store::{StateStore, UserKey};

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running on a tokio task, stopped gracefully by [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish (closing connections still
    /// open after the request timeout), and waits.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds `addr` (`127.0.0.1:0` lets the OS choose the port) and serves `state` in the background.
pub async fn start(state: Arc<AppState>, addr: &str) -> std::io::Result<Running> {
    let (listener, addr) = conn::bind(addr).await?;
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        stop: tx,
        task,
    })
}
