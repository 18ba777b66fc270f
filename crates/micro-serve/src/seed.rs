//! Starting a server's users from offline adaptation: the user states `micro adapt` writes beside
//! a model (micro-route's `users`, `user-states.jsonl`) become users of a tenant in the store,
//! each created with the state's prior and rate and its labelled pairs appended as feedback, so
//! the stored log replays to the very state `micro adapt` made (and later feedback continues it).
//! Users the tenant already has are left as they are: they may have moved on since.

use crate::store::{Feedback, NewUser, StateStore, StoreError, UserKey};
use micro_route::UserStates;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Users created, with their feedback events.
    pub created: usize,
    pub events: usize,
    /// Users the tenant already had (left alone).
    pub kept: usize,
}

/// Creates every user of `states` that `tenant` does not have yet.
pub async fn import_users(
    store: &dyn StateStore,
    tenant: &str,
    states: &UserStates,
) -> Result<Imported, StoreError> {
    let mut out = Imported::default();
    for r in states.users.values() {
        let key = UserKey::new(tenant, &r.user_id);
        let prior: Vec<f32> = r.state.log_prior.iter().map(|l| l.exp() as f32).collect();
        let new = NewUser {
            prior,
            rate: r.state.rate,
            context: r.state.context.clone(),
        };
        if store.create_user(&key, &new).await?.is_none() {
            out.kept += 1;
            continue;
        }
        for m in &r.margins {
            let event = Feedback {
                margins: m.clone(),
                ..Default::default()
            };
            store.append_feedback(&key, &new, &event).await?;
            out.events += 1;
        }
        out.created += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_route::fixture::{random_model, users_cache};
    use micro_route::users::{adapt_users, UserJob};
    use micro_route::ExpertView;

    /// Oracle: the stored users are the offline states, exactly as `micro adapt` made them.
    #[test]
    fn imported_users_hold_the_offline_states_and_existing_ones_are_kept() {
        let model = random_model(4, 3, None, 1);
        let cache = users_cache(4, &[("ann", 6), ("bob", 3)], 2);
        let view = ExpertView::new(&model, &cache, None).unwrap();
        let states = adapt_users(&view, &UserJob::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let path = dir.path().join("s.sqlite");
            let store = crate::store::open(path.to_str().unwrap()).await.unwrap();
            let done = import_users(store.as_ref(), "acme", &states).await.unwrap();
            assert_eq!((done.created, done.events, done.kept), (2, 9, 0));
            for (user, r) in &states.users {
                let key = UserKey::new("acme", user);
                let got = store.get_user(&key).await.unwrap().unwrap().state;
                assert_eq!(got.updates, r.state.updates);
                for (a, b) in got.log_weights.iter().zip(&r.state.log_weights) {
                    assert!((a - b).abs() < 1e-9, "{user}: {a} vs {b}");
                }
            }
            let again = import_users(store.as_ref(), "acme", &states).await.unwrap();
            assert_eq!((again.created, again.kept), (0, 2));
            // Another tenant's users are its own.
            let other = import_users(store.as_ref(), "other", &states)
                .await
                .unwrap();
            assert_eq!(other.created, 2);
        });
    }
}
