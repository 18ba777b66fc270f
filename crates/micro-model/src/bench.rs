//! `micro bench train`: Stage 1 seconds per epoch on random data of a given size, and the
//! process's peak memory against the size of the cache it stands for.

use crate::{train_rows, Method, TrainConfig, TrainError};
use micro_cache::Matrix;
use std::fmt;
use std::time::Instant;

/// What to time.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct TrainBenchConfig {
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 100_000))]
    pub pairs: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 768))]
    pub dim: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10))]
    pub heads: usize,
    /// Hidden units of the MLP router (0: linear router).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 128))]
    pub hidden: usize,
    /// Batch sizes to time, comma-separated.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', default_value = "32,512")
    )]
    pub batches: Vec<usize>,
    /// Epochs timed per batch size.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 2))]
    pub epochs: usize,
    #[cfg_attr(feature = "clap", arg(long, default_value = "micro"))]
    pub method: Method,
}

/// The timings of [`bench_train`]; `Display` prints them as `micro bench train` does.
#[derive(Clone, Debug)]
pub struct TrainBench {
    pub config: TrainBenchConfig,
    pub threads: usize,
    /// Seconds spent making the random data.
    pub data_seconds: f64,
    /// (batch size, seconds of each epoch).
    pub batches: Vec<(usize, Vec<f64>)>,
    /// Peak resident memory of the process, bytes (None where /proc is missing).
    pub peak_rss: Option<f64>,
}

impl TrainBench {
    /// Bytes of the cache the data stands for: n * d * 3 arrays * 4 bytes.
    pub fn cache_bytes(&self) -> f64 {
        self.config.pairs as f64 * self.config.dim as f64 * 3.0 * 4.0
    }
}

/// Times Stage 1 on `cfg.pairs` random pairs, each batch size in turn (the `--threads` pool).
pub fn bench_train(cfg: &TrainBenchConfig) -> Result<TrainBench, TrainError> {
    if cfg.pairs == 0 || cfg.dim == 0 {
        return Err(TrainError::EmptyArrays {
            pairs: cfg.pairs,
            dim: cfg.dim,
        });
    }
    let t0 = Instant::now();
    let (diff, prompt) = random_arrays(cfg.pairs, cfg.dim);
    let data_seconds = t0.elapsed().as_secs_f64();
    let rows: Vec<usize> = (0..cfg.pairs).collect();
    let mut batches = Vec::new();
    for &batch in &cfg.batches {
        let tc = TrainConfig {
            method: cfg.method,
            k: if cfg.method == Method::Single {
                1
            } else {
                cfg.heads
            },
            batch,
            max_epochs: cfg.epochs,
            router_hidden: (cfg.hidden > 0).then_some(cfg.hidden),
            holdout: 0.0,
            ..TrainConfig::default()
        };
        let data = crate::TrainData {
            diff: &diff,
            prompt: &prompt,
            groups: None,
            users: None,
        };
        let (_, report) = train_rows(&data, &rows, &tc, |_| {})?;
        batches.push((batch, report.history.iter().map(|e| e.seconds).collect()));
    }
    Ok(TrainBench {
        config: cfg.clone(),
        threads: rayon::current_num_threads(),
        data_seconds,
        batches,
        peak_rss: peak_rss_bytes(),
    })
}

impl fmt::Display for TrainBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "bench train: {} pairs, dim {}, K={}, method {}, router {}, {} threads; data made in {:.1} s",
            c.pairs,
            c.dim,
            c.heads,
            c.method,
            if c.hidden == 0 { "linear".to_string() } else { format!("mlp({})", c.hidden) },
            self.threads,
            self.data_seconds
        )?;
        for (batch, secs) in &self.batches {
            let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
            let list: Vec<String> = secs.iter().map(|s| format!("{s:.3}")).collect();
            writeln!(
                f,
                "batch {batch}: {mean:.3} s/epoch (epochs: {})",
                list.join(", ")
            )?;
        }
        let cache = self.cache_bytes();
        match self.peak_rss {
            Some(rss) => write!(
                f,
                "peak RSS {:.0} MB = {:.2}x the cache size ({:.0} MB = n*d*3*4 bytes)",
                rss / 1e6,
                rss / cache,
                cache / 1e6
            ),
            None => write!(
                f,
                "peak RSS unavailable (no /proc/self/status); cache size {:.0} MB",
                cache / 1e6
            ),
        }
    }
}

/// Random h_w - h_l and prompt arrays in [-0.1, 0.1): timing does not depend on the values.
pub fn random_arrays(n: usize, d: usize) -> (Matrix, Matrix) {
    use rayon::prelude::*;
    let fill = |salt: u64| {
        let mut data = vec![0f32; n * d];
        data.par_chunks_mut((d * 1024).max(1))
            .enumerate()
            .for_each(|(i, chunk)| {
                let mut state = salt ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                chunk.iter_mut().for_each(|v| {
                    *v = (splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32 * 0.2 - 0.1
                });
            });
        Matrix::new(n, d, data)
    };
    (fill(1), fill(2))
}

/// SplitMix64 (Steele et al.): plenty for timing data.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// VmHWM from /proc/self/status, in bytes.
pub fn peak_rss_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs of SplitMix64 from seed 0 (Vigna's reference implementation).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn random_arrays_are_in_range_and_differ() {
        let (a, b) = random_arrays(5, 3);
        assert_eq!((a.rows, a.cols), (5, 3));
        assert!(a
            .data
            .iter()
            .chain(&b.data)
            .all(|v| (-0.1..0.1).contains(v)));
        assert_ne!(a.data, b.data);
    }

    #[test]
    fn bench_times_every_batch_size_and_renders_them() {
        let cfg = TrainBenchConfig {
            pairs: 64,
            dim: 4,
            heads: 2,
            hidden: 0,
            batches: vec![8, 32],
            epochs: 2,
            method: Method::Micro,
        };
        let r = bench_train(&cfg).unwrap();
        assert_eq!(r.batches.iter().map(|b| b.0).collect::<Vec<_>>(), [8, 32]);
        assert!(r.batches.iter().all(|(_, s)| s.len() == 2));
        assert_eq!(r.cache_bytes(), 64.0 * 4.0 * 12.0);
        let text = r.to_string();
        assert!(text.starts_with("bench train: 64 pairs, dim 4, K=2, method micro, router linear"));
        assert!(text.contains("batch 32: "), "{text}");
        assert!(bench_train(&TrainBenchConfig { pairs: 0, ..cfg }).is_err());
    }
}
