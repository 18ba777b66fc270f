//! Shared backbone passes for concurrent text requests.
//!
//! An RL trainer sends many single-query requests at once; embedding each on its own runs many
//! tiny forward passes that compete for the cores. The [`Batcher`] queues what each request
//! needs embedded and worker threads run the queued texts together: one `embed_prompts` and
//! one `embed_responses` call per batch, each distinct text once. A batch closes when it holds
//! [`BatchOptions::max_texts`] texts or [`BatchOptions::max_wait`] after its first request;
//! requests that arrive while a batch runs make up the next one, so under load batches fill
//! without any waiting. With [`BatchOptions::workers`] above one, the next batch is collected
//! and run while the previous one still runs, so the serial parts of one pass (tokenising,
//! pooling) overlap the parallel parts of another. Each distinct text of a batch is embedded
//! once (a trainer samples several responses per prompt, each call needing the same router
//! input).

use crate::texts::{EmbedError, Texts};
use micro_cache::Matrix;
use micro_embed::{Backbone, Item, PromptItem};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How text requests share backbone passes (a larger request than `max_texts` still runs,
/// alone; with batching off each request runs its own call on the blocking pool). With the
/// `clap` feature these are the `--batch-*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct BatchOptions {
    /// Most texts in one shared backbone pass; 0 turns batching off (each request runs its
    /// own pass).
    #[cfg_attr(
        feature = "clap",
        arg(id = "batch_max_texts",
            long = "batch-max-texts", value_name = "BATCH_MAX_TEXTS", default_value_t = BatchOptions::default().max_texts)
    )]
    pub max_texts: usize,
    /// How long, in milliseconds, a batch's first request waits for others to join.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "batch-wait-ms",
            value_name = "BATCH_WAIT_MS",
            default_value = "2",
            value_parser = crate::options::parse_batch_wait
        )
    )]
    pub max_wait: Duration,
    /// Batches that may run at once (the next is collected while the previous runs).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "batch-workers",
            value_name = "BATCH_WORKERS",
            default_value_t = BatchOptions::default().workers,
            value_parser = crate::options::parse_workers
        )
    )]
    pub workers: usize,
}

impl BatchOptions {
    /// Every request on its own backbone call.
    pub const OFF: BatchOptions = BatchOptions {
        max_texts: 0,
        max_wait: Duration::ZERO,
        workers: 0,
    };
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_texts: 64,
            max_wait: Duration::from_millis(2),
            // Measured on one shared core at 32 clients: one worker's fuller batches gave more
            // texts per CPU second and a lower p99 than two.
            workers: 1,
        }
    }
}

struct Job {
    texts: Texts,
    reply: oneshot::Sender<Result<Matrix, EmbedError>>,
}

/// The queue in front of the backbone and its worker threads (which end when this is dropped).
pub struct Batcher {
    queue: mpsc::Sender<Job>,
}

/// The receiving end, shared by the workers: one collects a batch at a time.
struct Queue {
    rx: Receiver<Job>,
    /// A job that did not fit the last batch: the first of the next.
    carried: Option<Job>,
}

impl Batcher {
    pub fn start(backbone: Arc<dyn Backbone>, opts: BatchOptions) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::channel();
        let shared = Arc::new(Mutex::new(Queue { rx, carried: None }));
        for i in 0..opts.workers.max(1) {
            let (shared, backbone) = (shared.clone(), backbone.clone());
            std::thread::Builder::new()
                .name(format!("micro-batcher-{i}"))
                .spawn(move || worker(&shared, backbone.as_ref(), opts))?;
        }
        Ok(Batcher { queue })
    }

    /// The rows for `texts`, from whichever batch they ride in.
    pub async fn embed(&self, texts: Texts) -> Result<Matrix, EmbedError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { texts, reply })
            .map_err(|_| EmbedError::Stopped)?;
        // A worker drops a request unanswered only when it stops.
        answer.await.map_err(|_| EmbedError::Stopped)?
    }
}

/// The backbone of a text-serving scorer and, when batching is on, the batcher in front of it.
pub struct TextEmbedder {
    backbone: Arc<dyn Backbone>,
    batcher: Option<Batcher>,
}

impl TextEmbedder {
    /// Starts the batcher's workers unless `opts` turns batching off.
    pub fn start(backbone: Arc<dyn Backbone>, opts: BatchOptions) -> std::io::Result<Self> {
        let batcher = match opts.max_texts > 0 {
            true => Some(Batcher::start(backbone.clone(), opts)?),
            false => None,
        };
        Ok(TextEmbedder { backbone, batcher })
    }

    /// The rows for `texts`: through the batcher, or alone on the blocking pool when batching
    /// is off.
    pub async fn embed(&self, texts: Texts) -> Result<Matrix, EmbedError> {
        match &self.batcher {
            Some(b) => b.embed(texts).await,
            None => {
                let backbone = self.backbone.clone();
                tokio::task::spawn_blocking(move || {
                    embed_all(backbone.as_ref(), &[&texts]).map(|mut v| v.remove(0))
                })
                .await
                .unwrap_or_else(|e| match e.is_panic() {
                    true => Err(EmbedError::Panicked),
                    false => Err(EmbedError::Stopped),
                })
            }
        }
    }
}

fn worker(queue: &Mutex<Queue>, backbone: &dyn Backbone, opts: BatchOptions) {
    while let Some(batch) = next_batch(queue, opts) {
        run(backbone, batch);
    }
}

/// The next batch, collected while holding the queue; `None` once the batcher is dropped.
fn next_batch(queue: &Mutex<Queue>, opts: BatchOptions) -> Option<Vec<Job>> {
    // A worker that panicked holding the lock left the queue itself intact: keep using it.
    let mut q = queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let first = q.carried.take().or_else(|| q.rx.recv().ok())?;
    let (batch, carried) = collect(&q.rx, first, opts);
    q.carried = carried;
    Some(batch)
}

/// `first` plus whatever joins it within the limits; a job that would overflow the batch is
/// returned to start the next one.
fn collect(rx: &Receiver<Job>, first: Job, opts: BatchOptions) -> (Vec<Job>, Option<Job>) {
    let deadline = Instant::now() + opts.max_wait;
    let mut n = first.texts.len();
    let mut batch = vec![first];
    while n < opts.max_texts {
        let job = match rx.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        if n + job.texts.len() > opts.max_texts {
            return (batch, Some(job));
        }
        n += job.texts.len();
        batch.push(job);
    }
    (batch, None)
}

/// Embeds a batch and answers each job; requests whose client has gone (timeout, disconnect)
/// are skipped. A backbone error or panic fails the whole batch, not the worker.
fn run(backbone: &dyn Backbone, batch: Vec<Job>) {
    let jobs: Vec<Job> = batch.into_iter().filter(|j| !j.reply.is_closed()).collect();
    if jobs.is_empty() {
        return;
    }
    let texts: Vec<&Texts> = jobs.iter().map(|j| &j.texts).collect();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| embed_all(backbone, &texts)));
    let rows = match outcome {
        Ok(Ok(rows)) => rows.into_iter().map(Ok).collect(),
        Ok(Err(e)) => vec![Err(e); jobs.len()],
        Err(_) => vec![Err(EmbedError::Panicked); jobs.len()],
    };
    for (job, r) in jobs.into_iter().zip(rows) {
        let _ = job.reply.send(r);
    }
}

/// The rows of each request, with all router inputs in one backbone call and all responses in
/// another.
pub fn embed_all(backbone: &dyn Backbone, requests: &[&Texts]) -> Result<Vec<Matrix>, EmbedError> {
    let mut prompts = Vec::new();
    let mut responses = Vec::new();
    for t in requests {
        match t {
            Texts::Prompts(p) => prompts.extend(p.iter().map(|(prompt, context)| PromptItem {
                prompt,
                context: context.as_deref(),
            })),
            Texts::Responses {
                prompt,
                context,
                responses: r,
            } => responses.extend(r.iter().map(|response| Item {
                prompt,
                context: context.as_deref(),
                response,
            })),
        }
    }
    // The two passes run side by side inside rayon's pool, as the backbone's own parallel loops
    // do. Called from a thread outside the pool (the batch worker, or one of the blocking
    // threads that run unbatched requests), the passes would otherwise start their parallel
    // loops from outside it: with batching off, 32 concurrent requests then contended for 2
    // cores at 52 texts per CPU second, and in the pool they run at 88 (`micro bench serve
    // --text`); a one-request batch also gets both cores for its two passes.
    let (prompt_rows, response_rows) = rayon::join(
        || prompt_rows(backbone, &prompts),
        || response_rows(backbone, &responses),
    );
    let (prompt_rows, response_rows) = (prompt_rows?, response_rows?);
    let (mut p, mut r) = (0, 0);
    Ok(requests
        .iter()
        .map(|t| {
            let (source, at) = match t {
                Texts::Prompts(_) => (&prompt_rows, &mut p),
                Texts::Responses { .. } => (&response_rows, &mut r),
            };
            let idx: Vec<usize> = (*at..*at + t.len()).collect();
            *at += t.len();
            source.select_rows(&idx)
        })
        .collect())
}

/// One row per router input, each distinct input embedded once.
fn prompt_rows(backbone: &dyn Backbone, prompts: &[PromptItem<'_>]) -> Result<Matrix, EmbedError> {
    if prompts.is_empty() {
        return Ok(Matrix::default());
    }
    let (distinct, at) = distinct_by(prompts, |a, b| {
        a.prompt == b.prompt && a.context == b.context
    });
    let rows = backbone.embed_prompts(&distinct)?.features;
    Ok(checked(rows, distinct.len())?.select_rows(&at))
}

/// One row per response, each distinct (prompt, context, response) embedded once.
fn response_rows(backbone: &dyn Backbone, responses: &[Item<'_>]) -> Result<Matrix, EmbedError> {
    if responses.is_empty() {
        return Ok(Matrix::default());
    }
    let (distinct, at) = distinct_by(responses, |a, b| {
        a.response == b.response && a.prompt == b.prompt && a.context == b.context
    });
    let rows = backbone.embed_responses(&distinct)?.features;
    Ok(checked(rows, distinct.len())?.select_rows(&at))
}

/// The distinct items (first occurrences, in order) and, for each item, the index of its
/// distinct copy. Quadratic, which is cheap at batch sizes.
fn distinct_by<T: Copy>(items: &[T], same: impl Fn(&T, &T) -> bool) -> (Vec<T>, Vec<usize>) {
    let mut distinct: Vec<T> = Vec::new();
    let at = items
        .iter()
        .map(|item| match distinct.iter().position(|d| same(d, item)) {
            Some(i) => i,
            None => {
                distinct.push(*item);
                distinct.len() - 1
            }
        })
        .collect();
    (distinct, at)
}

/// Refuses a backbone answer with the wrong number of rows (instead of slicing past its end).
fn checked(m: Matrix, want: usize) -> Result<Matrix, EmbedError> {
    if m.rows == want {
        Ok(m)
    } else {
        Err(EmbedError::Rows { got: m.rows, want })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_items_map_to_one_distinct_copy() {
        let (distinct, at) = distinct_by(&[3, 1, 3, 2, 1], |a, b| a == b);
        assert_eq!(distinct, vec![3, 1, 2]);
        assert_eq!(at, vec![0, 1, 0, 2, 1]);
    }
}
