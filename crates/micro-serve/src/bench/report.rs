//! What `micro bench serve` prints around the load benchmarks of [`super::load`]: the heading
//! of each run, the batched/unbatched ratio per client count, and a private folder for the
//! bench's SQLite file.

use super::load::{BenchOptions, BenchResult, TextBenchOptions};
use super::BenchError;
use std::path::PathBuf;

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A private folder for the bench's SQLite file, named after the process; the caller removes it.
pub fn temp_dir() -> Result<PathBuf, BenchError> {
    let dir = std::env::temp_dir().join(format!("micro-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Folder(dir.clone(), e))?;
    Ok(dir)
}

/// The heading of the scoring and feedback benchmark.
pub fn heading(opts: &BenchOptions, cores: usize) -> String {
    format!(
        "micro bench serve: loopback, {} clients, {} requests per phase, synthetic model d={} K={}, {cores} core(s)",
        opts.concurrency, opts.requests, opts.dim, opts.k
    )
}

/// The heading of the text benchmark, for a backbone `name` of width `dim`.
pub fn text_heading(opts: &TextBenchOptions, name: &str, dim: usize, cores: usize) -> String {
    format!(
        "micro bench serve --text: loopback, backbone {name} (d={dim}), synthetic model K={}, {} single-query /get_reward calls per phase (2 backbone texts each), {} per prompt, batching: up to {} texts, wait {:?}, {} worker(s), {cores} core(s)",
        opts.k,
        opts.requests,
        opts.samples_per_prompt,
        opts.batching.max_texts,
        opts.batching.max_wait,
        opts.batching.workers,
    )
}

/// A line per client count: batched over unbatched texts/s, from [`super::load::run_text`]'s
/// results (the unbatched phases first, then the batched ones, in `clients` order).
pub fn speedups(clients: &[usize], results: &[BenchResult]) -> Vec<String> {
    let n = clients.len().min(results.len() / 2);
    clients[..n]
        .iter()
        .zip(&results[..n])
        .zip(&results[n..2 * n])
        .map(|((c, off), on)| {
            format!(
                "{c:>2} clients: batching gives {:.2}x the texts/s",
                on.per_second / off.per_second
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(per_second: f64) -> BenchResult {
        BenchResult {
            name: String::new(),
            unit: "texts",
            requests: 10,
            errors: 0,
            seconds: 1.0,
            per_second,
            p50_ms: 1.0,
            p99_ms: 1.0,
            max_ms: 1.0,
            cpu_seconds: None,
        }
    }

    #[test]
    fn speedups_pair_each_unbatched_phase_with_its_batched_one() {
        let r = [result(10.0), result(20.0), result(25.0), result(30.0)];
        assert_eq!(
            speedups(&[1, 8], &r),
            [
                " 1 clients: batching gives 2.50x the texts/s",
                " 8 clients: batching gives 1.50x the texts/s"
            ]
        );
    }

    #[test]
    fn headings_name_the_sizes_and_the_temp_dir_exists() {
        let o = BenchOptions::default();
        assert_eq!(
            heading(&o, 2),
            "micro bench serve: loopback, 8 clients, 5000 requests per phase, synthetic model d=768 K=10, 2 core(s)"
        );
        let t = text_heading(&TextBenchOptions::default(), "mini", 384, 4);
        assert!(t.starts_with("micro bench serve --text: loopback, backbone mini (d=384), synthetic model K=10, 320 single-query"), "{t}");
        assert!(t.ends_with("4 core(s)"));
        assert!(cores() >= 1);
        let dir = temp_dir().unwrap();
        assert!(dir.is_dir());
    }
}
