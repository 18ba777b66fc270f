#!/usr/bin/env python3
"""The PyTorch peer of `micro bench embed` for decoder backbones.

Two commands:

  write-model  builds a random-weight checkpoint of a real model's shape with transformers' own
               initialisation (seeded) and the golden tiny tokenizer, in the Hugging Face layout
               that micro reads:
                 python3 scripts/decoder-peer-bench.py write-model --shape qwen2.5-0.5b -o /tmp/q05
  bench        runs transformers on exactly the token ids that micro ran (written by
               `micro bench embed --dump-ids ids.json`), in the same length-sorted batches, and
               prints tokens/s in micro's format:
                 python3 scripts/decoder-peer-bench.py bench --model /tmp/q05 --ids ids.json --threads 2

Needs torch and transformers (not part of micro's build or CI); see docs/gpu.md for the
commands and the figures measured with them.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent.parent.parent / "shared" / "golden"

# Sizes of the real models; the vocabulary is the golden tokenizer's (400), so these are the
# models' transformer stacks (Qwen2.5-0.5B: 358M parameters without its 151,936-row embedding).
SHAPES = {
    "qwen2.5-0.5b": {
        "golden": "tiny-qwen2-rm",
        "config": {
            "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2, "head_dim": 64,
            "rms_norm_eps": 1e-6, "max_position_embeddings": 32768, "tie_word_embeddings": True,
            "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
        },
    },
    "grm-llama3.2-3b": {
        "golden": "tiny-llama-rm",
        "config": {
            "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
            "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128,
            "rms_norm_eps": 1e-5, "max_position_embeddings": 131072, "tie_word_embeddings": False,
            "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 32.0,
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192},
        },
    },
}

# micro's batching rule (crates/micro-embed/src/decoder/batch.rs): longest first, at most
# batch_size sequences and batch_size * 512 padded tokens per batch.
TOKENS_PER_SEQ = 512


def plan(lengths, max_seqs):
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        padded = lengths[current[0]] if current else lengths[i]
        if current and (len(current) == max_seqs or (len(current) + 1) * padded > max_seqs * TOKENS_PER_SEQ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def dtype_of(torch, name):
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[name]


def write_model(args):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    shape = SHAPES[args.shape]
    golden = Path(args.golden) / shape["golden"]
    config_dict = json.loads((golden / "config.json").read_text())
    config_dict.update(shape["config"])
    config_dict.pop("rope_theta", None)
    if "layer_types" in config_dict:  # Qwen2: one entry per layer
        config_dict["layer_types"] = ["full_attention"] * config_dict["num_hidden_layers"]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config_dict, indent=2))
    config = AutoConfig.from_pretrained(out)
    torch.manual_seed(args.seed)
    with torch.device(args.device):
        model = AutoModelForSequenceClassification.from_config(config, dtype=dtype_of(torch, args.dtype))
    model.save_pretrained(out, safe_serialization=True)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
        shutil.copyfile(golden / name, out / name)
    params = sum(p.numel() for p in model.model.parameters())
    print(f"wrote {out}: {args.shape}, {params / 1e6:.1f}M parameters in the stack, {args.dtype}")


def bench(args):
    import torch
    from transformers import AutoModel

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = AutoModel.from_pretrained(args.model, dtype=dtype_of(torch, args.dtype)).to(device).eval()
    pad = model.config.pad_token_id or 0
    doc = json.loads(Path(args.ids).read_text())
    batch_size = args.batch_size or doc["batch_size"]
    print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{args.device}, {args.dtype}, batch {batch_size}, {torch.get_num_threads()} threads, "
          f"attention {model.config._attn_implementation}")
    print(f"{'tokens':>8} {'texts':>8} {'texts/s':>10} {'tokens/s':>12} {'seconds':>8} {'cpu s':>8}")

    def run(seqs, batches):
        for members in batches:
            t = max(len(seqs[i]) for i in members)
            ids = torch.full((len(members), t), pad, dtype=torch.long)
            mask = torch.zeros((len(members), t), dtype=torch.long)
            for row, i in enumerate(members):
                ids[row, : len(seqs[i])] = torch.tensor(seqs[i])
                mask[row, : len(seqs[i])] = 1
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            # The states micro keeps: each sequence's last token.
            last = out[torch.arange(len(members)), mask.sum(1).to(device) - 1].float().cpu()
            del last
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        for group in doc["lengths"]:
            seqs = group["sequences"]
            batches = plan([len(s) for s in seqs], batch_size)
            run(seqs, batches[:1])  # warm-up
            t0, cpu0 = time.perf_counter(), time.process_time()
            run(seqs, batches)
            s, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            tokens = sum(len(x) for x in seqs)
            print(f"{tokens / len(seqs):>8.0f} {len(seqs):>8} {len(seqs) / s:>10.1f} {tokens / s:>12.0f} {s:>8.2f} {cpu:>8.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write-model", help="write a random-weight checkpoint of a real model's shape")
    w.add_argument("--shape", choices=sorted(SHAPES), required=True)
    w.add_argument("-o", "--output", required=True)
    w.add_argument("--golden", default=str(GOLDEN), help="folder of the golden tiny models (tokenizers)")
    w.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    w.add_argument("--device", default="cpu", help="where to initialise (cuda is faster for 3B)")
    w.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bench", help="time transformers on the token ids micro ran")
    b.add_argument("--model", required=True)
    b.add_argument("--ids", required=True, help="JSON from `micro bench embed --dump-ids`")
    b.add_argument("--batch-size", type=int, default=0, help="default: micro's, from the JSON")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--device", default="cpu")
    b.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    args = p.parse_args()
    {"write-model": write_model, "bench": bench}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
