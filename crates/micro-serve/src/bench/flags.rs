//! `micro bench serve` as one call: its flags (with the `clap` feature), and the run that
//! prints the heading, each phase's result and, for `--text`, the batching speed-ups.

use super::load::{self, BenchOptions, TextBenchOptions};
use super::{report, BenchError};
use crate::store::SqliteSync;
use crate::BatchOptions;
use micro_embed::{BackboneOptions, DeviceKind};
use std::path::PathBuf;
use std::sync::Arc;

/// The flags of `micro bench serve`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ServeBenchFlags {
    /// Requests per phase (default: 5000 for scoring and feedback, 320 with --text).
    #[cfg_attr(feature = "clap", arg(long))]
    pub requests: Option<usize>,
    /// Concurrent keep-alive clients.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 8))]
    pub concurrency: usize,
    /// Embedding width of the synthetic model.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 768))]
    pub dim: usize,
    /// Heads of the synthetic model.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10))]
    pub k: usize,
    /// Responses per scoring request.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 4))]
    pub responses: usize,
    /// Users the feedback is spread over.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 100))]
    pub users: usize,
    /// State store URL (default: a fresh SQLite file in a temporary folder).
    #[cfg_attr(feature = "clap", arg(long))]
    pub db: Option<String>,
    #[cfg_attr(feature = "clap", arg(long))]
    pub sqlite_sync: Option<SqliteSync>,
    /// Measure text scoring through a real backbone instead: single-query OpenRLHF-shaped
    /// calls from --clients concurrent clients, without and with batching.
    #[cfg_attr(feature = "clap", arg(long))]
    pub text: bool,
    /// Backbone folder for --text (default: all-MiniLM-L6-v2 from scripts/fetch-assets.sh).
    #[cfg_attr(feature = "clap", arg(long))]
    pub backbone: Option<PathBuf>,
    /// Concurrent single-query clients for --text, one phase each.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', default_value = "1,8,32")
    )]
    pub clients: Vec<usize>,
    /// For --text: consecutive calls that share a prompt and label, as a trainer sampling
    /// several responses per prompt sends them (1: all prompts distinct).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1))]
    pub samples_per_prompt: usize,
    /// Device of --text's backbone: cpu, or cuda[:N] for a GPU (a build from
    /// scripts/build-cuda.sh), where a single call leaves most of the device idle.
    #[cfg_attr(feature = "clap", arg(long, default_value = "cpu"))]
    pub device: DeviceKind,
    #[cfg_attr(feature = "clap", command(flatten))]
    pub batching: BatchOptions,
}

impl ServeBenchFlags {
    /// The load benchmark's options (5000 requests per phase unless given).
    pub fn options(&self) -> BenchOptions {
        BenchOptions {
            requests: self.requests.unwrap_or(5000),
            concurrency: self.concurrency,
            dim: self.dim,
            k: self.k,
            responses: self.responses,
            users: self.users,
            db: self.db.clone(),
            sync: self.sqlite_sync,
        }
    }

    /// The text benchmark's options (320 requests per phase unless given).
    pub fn text_options(&self) -> TextBenchOptions {
        TextBenchOptions {
            requests: self.requests.unwrap_or(320),
            clients: self.clients.clone(),
            k: self.k,
            batching: self.batching,
            samples_per_prompt: self.samples_per_prompt,
        }
    }
}

/// Runs the benchmark the flags ask for, giving each printed line to `out`.
pub fn run(flags: &ServeBenchFlags, out: &mut dyn FnMut(String)) -> Result<(), BenchError> {
    if flags.text {
        return run_text(flags, out);
    }
    let opts = flags.options();
    let tmp = report::temp_dir()?;
    out(report::heading(&opts, report::cores()));
    let results = load::run(&opts, &tmp)?;
    results.iter().for_each(|r| out(r.to_string()));
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// `--text`: texts/s and latency with and without batching, and the batched/unbatched
/// throughput ratio per client count.
fn run_text(flags: &ServeBenchFlags, out: &mut dyn FnMut(String)) -> Result<(), BenchError> {
    let dir = match &flags.backbone {
        Some(d) => d.clone(),
        None => micro_embed::default_minilm_dir().ok_or(BenchError::NoBackbone)?,
    };
    let options = BackboneOptions {
        device: flags.device,
        ..BackboneOptions::default()
    };
    let backbone = micro_embed::load_backbone(&dir, &options).map_err(|source| {
        let hint = if dir.is_dir() {
            ""
        } else {
            " (fetch it with scripts/fetch-assets.sh minilm, or pass --backbone DIR)"
        };
        BenchError::Backbone {
            dir: dir.clone(),
            hint,
            source: Box::new(source),
        }
    })?;
    let opts = flags.text_options();
    let (name, dim) = (backbone.info().name, backbone.dim());
    let on = match flags.device {
        DeviceKind::Cpu => format!("{name} on the CPU"),
        DeviceKind::Cuda(n) => format!("{name} on cuda:{n}"),
    };
    out(report::text_heading(&opts, &on, dim, report::cores()));
    let tmp = report::temp_dir()?;
    let results = load::run_text(&opts, Arc::from(backbone), &tmp)?;
    let _ = std::fs::remove_dir_all(&tmp);
    results.iter().for_each(|r| out(r.to_string()));
    report::speedups(&opts.clients, &results)
        .into_iter()
        .for_each(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> ServeBenchFlags {
        ServeBenchFlags {
            requests: None,
            concurrency: 8,
            dim: 768,
            k: 10,
            responses: 4,
            users: 100,
            db: None,
            sqlite_sync: None,
            text: false,
            backbone: None,
            clients: vec![1, 8, 32],
            samples_per_prompt: 1,
            device: DeviceKind::Cpu,
            batching: BatchOptions::default(),
        }
    }

    #[test]
    fn unset_requests_default_per_benchmark() {
        let f = flags();
        let o = f.options();
        assert_eq!((o.requests, o.concurrency, o.dim, o.k), (5000, 8, 768, 10));
        assert_eq!(f.text_options().requests, 320);
        assert_eq!(f.text_options().clients, [1, 8, 32]);
        let f = ServeBenchFlags {
            requests: Some(40),
            ..flags()
        };
        assert_eq!((f.options().requests, f.text_options().requests), (40, 40));
    }

    #[test]
    fn a_missing_backbone_is_named() {
        let f = ServeBenchFlags {
            text: true,
            backbone: Some("/nonexistent/backbone".into()),
            ..flags()
        };
        let err = run(&f, &mut |_| {}).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot load the backbone /nonexistent/backbone (fetch it"),
            "{err}"
        );
    }

    /// `--device` reaches the backbone: a build without CUDA refuses it before any phase,
    /// saying what to do; a CUDA build on a GPU runs and names the device in the heading.
    #[test]
    fn the_device_flag_reaches_the_backbone() {
        let dir = micro_embed::located_minilm_dir().unwrap_or_else(|e| panic!("{e}"));
        let f = ServeBenchFlags {
            text: true,
            backbone: Some(dir),
            device: DeviceKind::Cuda(0),
            requests: Some(2),
            clients: vec![1],
            ..flags()
        };
        let mut lines = Vec::new();
        match run(&f, &mut |l| lines.push(l)) {
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("without CUDA support") && e.contains("build-cuda.sh"),
                    "{e}"
                );
                assert!(!e.contains("fetch it"), "{e}");
                assert!(lines.is_empty(), "{lines:?}");
            }
            Ok(()) => assert!(lines[0].contains("on cuda:0"), "{lines:?}"),
        }
    }
}
