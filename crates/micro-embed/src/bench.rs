//! `micro bench embed`: the embedding throughput of a backbone (texts/s and tokens/s per text
//! length, wall-clock and CPU seconds), and for decoders on a GPU how far the device's states
//! are from the CPU's in f32.

use crate::decoder::{DecoderModel, DecoderOptions, Precision};
use crate::encoder::{bench_texts, Encoder, Engine};
use crate::{
    family, load_backbone, Backbone, BackboneOptions, DeviceKind, EmbedError, Family, ModelFolder,
    PromptItem, Result,
};
use micro_data::Message;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to time.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct EmbedBenchOptions {
    /// Hugging Face model folder (a BERT-family encoder or a Llama/Qwen2 decoder).
    #[cfg_attr(feature = "clap", arg(long))]
    pub model: PathBuf,
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 32))]
    pub batch_size: usize,
    /// Texts per length.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 256))]
    pub texts: usize,
    /// Target token counts of the texts (special tokens included; a decoder's chat template
    /// adds its own).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', default_value = "17,90,200")
    )]
    pub lengths: Vec<usize>,
    /// native (hand-written forward) or candle (candle's BertModel), for encoders.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Engine::Native))]
    pub engine: Engine,
    /// cpu, or cuda[:N] (a build from scripts/build-cuda.sh).
    #[cfg_attr(feature = "clap", arg(long, default_value = "cpu"))]
    pub device: DeviceKind,
    /// Decoders: dtype of weights and activations (auto: f32 on the CPU, bf16 on a GPU).
    #[cfg_attr(feature = "clap", arg(long, default_value = "auto"))]
    pub precision: Precision,
    /// Decoders: write the token ids of every sequence run (JSON) for a peer benchmark on the
    /// same input (scripts/decoder-peer-bench.py).
    #[cfg_attr(feature = "clap", arg(long))]
    pub dump_ids: Option<PathBuf>,
    /// Decoders on a GPU: also run the texts on the CPU in f32 and print how far the device's
    /// hidden states are from them.
    #[cfg_attr(feature = "clap", arg(long))]
    pub compare_cpu: bool,
}

/// Runs the benchmark, giving each line of its report to `out` as soon as it is known.
pub fn bench_embed(o: &EmbedBenchOptions, out: &mut dyn FnMut(String)) -> Result<()> {
    let folder = ModelFolder::open(&o.model)?;
    match family(&folder.architecture, &folder.model_type) {
        Some(Family::Decoder) => bench_decoder(o, &folder, out),
        _ => bench_encoder(o, &folder, out),
    }
}

fn bench_encoder(
    o: &EmbedBenchOptions,
    folder: &ModelFolder,
    out: &mut dyn FnMut(String),
) -> Result<()> {
    let opts = BackboneOptions {
        batch_size: o.batch_size,
        device: o.device,
        ..Default::default()
    };
    let backbone: Box<dyn Backbone> = match o.engine {
        Engine::Native => load_backbone(&o.model, &opts)?,
        Engine::Candle => Box::new(Encoder::load_with(folder, &opts, Engine::Candle)?),
    };
    let tokenizer = folder.load_tokenizer()?;
    out(format!(
        "model {} ({}), engine {}, batch {}, {} threads",
        backbone.info().name,
        folder.architecture,
        o.engine,
        o.batch_size,
        rayon::current_num_threads()
    ));
    out(header());
    for &len in &o.lengths {
        let texts = bench_texts(&tokenizer, len, o.texts)?;
        let tokens: usize = texts.iter().map(|(_, n)| n).sum();
        let prompts: Vec<micro_data::Prompt> = texts
            .iter()
            .map(|(t, _)| micro_data::Prompt::Text(t.clone()))
            .collect();
        let items: Vec<PromptItem> = prompts
            .iter()
            .map(|p| PromptItem {
                prompt: p,
                context: None,
            })
            .collect();
        backbone.embed_prompts(&items[..o.batch_size.min(items.len())])?; // warm-up: buffers, caches
        let timed = Timed::run(|| backbone.embed_prompts(&items).map(|_| ()))?;
        out(timed.row(tokens, texts.len()));
    }
    Ok(())
}

/// Decoders: each text as a user turn rendered with the chat template's generation prompt, the
/// router-input pass (`embed_prompts`) that serving and `micro embed` run.
fn bench_decoder(
    o: &EmbedBenchOptions,
    folder: &ModelFolder,
    out: &mut dyn FnMut(String),
) -> Result<()> {
    let model = load_decoder(&o.model, o.device, o.precision, o.batch_size)?;
    let c = model.config();
    out(format!(
        "model {} ({}, {} layers, hidden {}), device {:?}, precision {:?}, batch {}, {} threads",
        folder.name(),
        c.architecture_name,
        c.num_hidden_layers,
        c.hidden_size,
        o.device,
        o.precision,
        o.batch_size,
        rayon::current_num_threads()
    ));
    let tokenizer = folder.load_tokenizer()?;
    let mut dumped = Vec::new();
    out(header());
    for &len in &o.lengths {
        let texts = bench_texts(&tokenizer, len, o.texts)?;
        let turns: Vec<Vec<Message>> = texts
            .iter()
            .map(|(t, _)| vec![Message::new("user", t.clone())])
            .collect();
        let inputs: Vec<(&[Message], Option<&str>)> =
            turns.iter().map(|t| (t.as_slice(), None)).collect();
        let ids: Vec<Vec<u32>> = inputs
            .iter()
            .map(|(p, c)| model.encode_prompt(p, *c).map(|e| e.0))
            .collect::<std::result::Result<_, _>>()?;
        let tokens: usize = ids.iter().map(Vec::len).sum();
        model.embed_prompts(&inputs[..o.batch_size.min(inputs.len())])?; // warm-up
        let mut states = Vec::new();
        let timed = Timed::run(|| {
            states = model.embed_prompts(&inputs)?;
            Ok(())
        })?;
        out(timed.row(tokens, texts.len()));
        if o.compare_cpu {
            let cpu = load_decoder(&o.model, DeviceKind::Cpu, Precision::F32, o.batch_size)?;
            let (worst, min_cosine) = distance(&states, &cpu.embed_prompts(&inputs)?);
            out(format!(
                "{:>8} against the CPU in f32: max abs difference {worst:.3e}, min cosine {min_cosine:.6}",
                ""
            ));
        }
        dumped.push(serde_json::json!({"target_tokens": len, "sequences": ids}));
    }
    if let Some(path) = &o.dump_ids {
        let doc = serde_json::json!({"batch_size": o.batch_size, "lengths": dumped});
        std::fs::write(path, doc.to_string()).map_err(|source| EmbedError::Io {
            path: path.clone(),
            source,
        })?;
        out(format!("token ids written to {}", path.display()));
    }
    Ok(())
}

/// A decoder backbone with these settings.
pub fn load_decoder(
    dir: &Path,
    device: DeviceKind,
    precision: Precision,
    batch_size: usize,
) -> Result<DecoderModel> {
    let options = DecoderOptions {
        device,
        precision,
        batch_size,
        ..Default::default()
    };
    Ok(DecoderModel::load(dir, &options)?)
}

/// The largest absolute difference and the smallest cosine between `states` and `reference`,
/// row by row.
pub fn distance(states: &[(Vec<f32>, bool)], reference: &[(Vec<f32>, bool)]) -> (f32, f32) {
    let (mut worst, mut min_cosine) = (0f32, 1f32);
    for ((s, _), (r, _)) in states.iter().zip(reference) {
        let diff = s
            .iter()
            .zip(r)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
        min_cosine = min_cosine.min(cosine(s, r));
    }
    (worst, min_cosine)
}

/// The cosine of two vectors (0 when one is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (norm(a) * norm(b)).max(1e-30)) as f32
}

/// The column heads of the timing rows.
pub fn header() -> String {
    format!(
        "{:>8} {:>8} {:>10} {:>12} {:>8} {:>8}",
        "tokens", "texts", "texts/s", "tokens/s", "seconds", "cpu s"
    )
}

/// Wall-clock and CPU seconds of one timed run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timed {
    pub seconds: f64,
    pub cpu: Option<f64>,
}

impl Timed {
    pub fn run(f: impl FnOnce() -> Result<()>) -> Result<Self> {
        let (t0, cpu0) = (Instant::now(), cpu_seconds());
        f()?;
        let seconds = t0.elapsed().as_secs_f64();
        let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
        Ok(Timed { seconds, cpu })
    }

    /// The timing row of `texts` texts of `tokens` tokens in all.
    pub fn row(&self, tokens: usize, texts: usize) -> String {
        let cpu = self.cpu.map_or("?".into(), |c| format!("{c:.2}"));
        format!(
            "{:>8.0} {:>8} {:>10.1} {:>12.0} {:>8.2} {:>8}",
            tokens as f64 / texts as f64,
            texts,
            texts as f64 / self.seconds,
            tokens as f64 / self.seconds,
            self.seconds,
            cpu
        )
    }
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`), to tell a slow run
/// from one that shared the cores with other work.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_distance_compare_rows() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f32.sqrt()).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        let a = vec![(vec![1.0, 2.0], true), (vec![0.0, 1.0], true)];
        let b = vec![(vec![1.0, 2.5], true), (vec![1.0, 0.0], true)];
        let (worst, min_cos) = distance(&a, &b);
        assert_eq!(worst, 1.0);
        assert!(min_cos.abs() < 1e-6);
    }

    #[test]
    fn timing_rows_line_up_under_the_header() {
        let t = Timed {
            seconds: 2.0,
            cpu: Some(3.5),
        };
        let row = t.row(1000, 10);
        assert_eq!(
            row,
            "     100       10        5.0          500     2.00     3.50"
        );
        assert_eq!(row.len(), header().len());
        let unknown = Timed {
            seconds: 1.0,
            cpu: None,
        };
        assert!(unknown.row(10, 1).ends_with("       ?"));
        let measured = Timed::run(|| Ok(())).unwrap();
        assert!(measured.seconds >= 0.0);
        assert!(cpu_seconds().is_some());
    }
}
