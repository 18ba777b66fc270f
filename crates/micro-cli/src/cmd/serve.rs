//! `micro serve`: the reward server and its API keys.

use anyhow::Context;
use micro_embed::{ContextMode, DeviceKind};
use micro_model::MixtureModel;
use micro_route::Rate;
use micro_serve::{AppState, BatchOptions, Limits, Scorer, StoreOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    command: Option<ServeCommand>,
    /// Model folder (model.safetensors + config.json) from `micro train`.
    #[arg(long, required = true)]
    model: Option<PathBuf>,
    /// Backbone folder (the one the model was trained on) to accept text requests.
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Where the context goes in the router input text: prefix, system or none.
    #[arg(long, default_value = "prefix")]
    context_mode: ContextMode,
    /// Device for the backbone: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    #[command(flatten)]
    db: StoreOptions,
    /// Address to listen on; port 0 lets the OS choose (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Hedge learning rate of new users: a number eta (1/tau in the paper; 1, the default, is
    /// the Bayesian update, with which a head takes a user over from the shared reward once
    /// their answers favour it clearly) or `anytime` (eta_t = sqrt(8 ln K / t) / C, no horizon
    /// needed, the regret bound of adversarial feedback).
    #[arg(long, default_value = "1")]
    rate: Rate,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    batching: BatchOptions,
}

#[derive(clap::Subcommand)]
enum ServeCommand {
    /// Manage API keys (one or more per tenant; stored hashed).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users' stored state.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(clap::Subcommand)]
enum UsersCommand {
    /// Start a tenant's users from `micro adapt`'s per-user weights (the model folder's
    /// user-states.jsonl): each user the tenant does not have yet is created and their labelled
    /// pairs logged as feedback, so the server holds the very state `micro adapt` made.
    Import {
        /// The adapted model folder (the one to serve).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: StoreOptions,
    },
}

#[derive(clap::Subcommand)]
enum KeysCommand {
    /// Create a key for a tenant and print it (it is shown only once).
    Add {
        #[arg(long)]
        tenant: String,
        /// A note to recognise the key by in `keys list`.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        db: StoreOptions,
    },
    /// List keys (hash prefix, tenant, label, creation time).
    List {
        #[command(flatten)]
        db: StoreOptions,
    },
    /// Revoke the keys whose hash starts with PREFIX (as `keys list` shows; 8+ hex digits).
    Remove {
        prefix: String,
        #[command(flatten)]
        db: StoreOptions,
    },
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match a.command {
        Some(ServeCommand::Keys(k)) => rt.block_on(keys(k)),
        Some(ServeCommand::Users(u)) => rt.block_on(users(u)),
        None => rt.block_on(serve(a)),
    }
}

async fn keys(c: KeysCommand) -> anyhow::Result<()> {
    match c {
        KeysCommand::Add { tenant, label, db } => {
            let store = db.open().await?;
            let (key, rec) = micro_serve::add_key(store.as_ref(), &tenant, &label).await?;
            eprintln!(
                "key {} for tenant {:?} stored in {}; it is not shown again",
                &rec.hash[..12],
                rec.tenant,
                db.redacted()
            );
            println!("{key}");
        }
        KeysCommand::List { db } => {
            for k in db.open().await?.list_keys().await? {
                println!(
                    "{}  {:<24} {:<24} {}",
                    &k.hash[..12],
                    k.tenant,
                    k.label,
                    k.created_at
                );
            }
        }
        KeysCommand::Remove { prefix, db } => {
            if prefix.len() < 8 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
                anyhow::bail!("key prefix {prefix:?}: give at least 8 hex digits of the hash `keys list` shows");
            }
            let n = db
                .open()
                .await?
                .remove_keys(&prefix.to_ascii_lowercase())
                .await?;
            if n == 0 {
                anyhow::bail!("no key hash starts with {prefix}");
            }
            println!(
                "removed {n} key(s); servers stop accepting them within {} s",
                micro_serve::KEY_CACHE_TTL.as_secs()
            );
        }
    }
    Ok(())
}

async fn users(c: UsersCommand) -> anyhow::Result<()> {
    let UsersCommand::Import { model, tenant, db } = c;
    let served = MixtureModel::load(&model)
        .with_context(|| format!("cannot load the model folder {}", model.display()))?;
    let states = micro_route::UserStates::load(&model)?;
    if states.is_empty() {
        anyhow::bail!(
            "{} has no {}: adapt users known by id with `micro adapt` first",
            model.display(),
            micro_route::users::USER_STATES_FILE
        );
    }
    let experts = micro_route::Experts::of(&served).len();
    if let Some(r) = states.users.values().find(|r| r.state.k() != experts) {
        anyhow::bail!(
            "user {:?} has weights over {} experts, the model in {} has {experts}: import the states of the model you serve",
            r.user_id,
            r.state.k(),
            model.display()
        );
    }
    let store = db.open().await?;
    let done = micro_serve::import_users(store.as_ref(), &tenant, &states).await?;
    println!(
        "imported {} users ({} feedback events) for tenant {tenant:?} into {}; {} the tenant already had were left as they are",
        done.created,
        done.events,
        db.redacted(),
        done.kept
    );
    Ok(())
}

async fn serve(mut a: ServeArgs) -> anyhow::Result<()> {
    a.limits.check()?;
    let dir = a.model.context("--model is required")?;
    let model = MixtureModel::load(&dir)
        .with_context(|| format!("cannot load the model folder {}", dir.display()))?;
    let scorer = match &a.backbone {
        Some(b) => {
            let (loaded, warning) = micro_serve::backbone_for(&model, b, a.context_mode, a.device)
                .with_context(|| format!("cannot load the backbone {}", b.display()))?;
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            Scorer::with_backbone(model, Arc::from(loaded), a.batching)?
        }
        None => Scorer::new(model),
    };
    let store = a.db.open().await?;
    let wanted = a.limits.max_connections;
    let (files, cap) = micro_serve::open_files_for(wanted)
        .context("cannot read or raise the open-file limit (RLIMIT_NOFILE)")?;
    if cap < wanted {
        eprintln!("warning: the open-file limit is {files}: serving at most {cap} connections, not {wanted} (raise the hard limit, `ulimit -Hn`)");
    }
    a.limits.max_connections = cap;
    let summary = format!(
        "model K={} d={}, store {} ({}), text {}, at most {cap} connections",
        scorer.k(),
        scorer.dim(),
        store.kind(),
        a.db.redacted(),
        scorer.has_backbone()
    );
    let state = Arc::new(AppState::new(scorer, store, a.limits, a.rate));
    let (listener, addr) = micro_serve::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    // Tests and scripts read the bound address from this line (port 0 picks a free port).
    println!("micro serve: listening on http://{addr}");
    std::io::stdout().flush().ok();
    eprintln!("micro serve: {summary}; Ctrl-C or SIGTERM stops after in-flight requests");
    micro_serve::serve(listener, state, micro_serve::shutdown_signal())
        .await
        .context("server failed")?;
    eprintln!("micro serve: stopped");
    Ok(())
}
