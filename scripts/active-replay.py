#!/usr/bin/env python3
"""Replays question-choosing rules for active Stage 2 on a cache and Stage 1 models, without
training a router: for each attribute, a rule picks pairs from the attribute's pool (its
context-labelled training pairs, 150 per attribute in the built-in data) one at a time, reading a
label only once its pair is picked; Stage 2 is replaced by the choice it makes at tau = 1e-3 with
context evidence (the head with the largest summed clipped log-likelihood over the picked
pairs), and the score is that head's test accuracy, averaged over attributes.

  python3 scripts/active-replay.py --cache C --models M1 M2 ... [--runs 5] [--budgets 5,10,15,25,50]

On the built-in HelpSteer2-style data with 12 Stage 1 seeds this agrees with `micro eval
--budget-sweep ... --select random,active` to within 0.003 (docs/active.md), so it is a fast way
to try a rule before building it. Standard library only; models must be `micro` models with an
MLP router (relu), the ones `micro train` writes by default.
"""
import argparse
import json
import math
import random
import statistics as st
import struct
from array import array
from pathlib import Path

CLIP = 9.21  # the loss clip of Stage 2 and of UserState, in nats
FLOOR = 0.01  # MIN_INFORMATION


def tensors(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {k} is {v['dtype']}; this replay reads F32 only")
        a = array("f")
        lo, hi = v["data_offsets"]
        a.frombytes(data[8 + n + lo : 8 + n + hi])
        out[k] = (a, v["shape"])
    return out


def rows(a, d):
    return [a[i * d : (i + 1) * d] for i in range(len(a) // d)]


def load(cache, model):
    """Per attribute: the pool's head margins (chosen minus rejected), the test margins and the
    context prior (mean router output over the pool)."""
    e = tensors(Path(cache) / "embeddings.safetensors")
    pairs = [json.loads(l) for l in open(Path(cache) / "pairs.jsonl")]
    m = tensors(Path(model) / "model.safetensors")
    heads, (k, d) = m["heads"][0], m["heads"][1]
    heads = rows(heads, d)
    w1, (hid, _) = m["router.w1"]
    w1, b1 = rows(w1, d), m["router.b1"][0]
    w2, b2 = rows(m["router.w2"][0], hid), m["router.b2"][0]
    chosen, rejected = e["chosen_embeddings"][0], e["rejected_embeddings"][0]
    routed = e.get("context_prompt_embeddings", e["prompt_embeddings"])[0]

    def margins(i):
        diff = [a - b for a, b in zip(chosen[i * d : (i + 1) * d], rejected[i * d : (i + 1) * d])]
        return [sum(a * b for a, b in zip(h, diff)) for h in heads]

    def route(i):
        x = routed[i * d : (i + 1) * d]
        h = [max(0.0, sum(a * b for a, b in zip(w, x)) + b) for w, b in zip(w1, b1)]
        lo = [sum(a * b for a, b in zip(w, h)) + b for w, b in zip(w2, b2)]
        top = max(lo)
        ex = [math.exp(v - top) for v in lo]
        return [v / sum(ex) for v in ex]

    groups = {}
    for i, p in enumerate(pairs):
        part = {"train": "pool", "test": "test"}.get(p.get("split"))
        if part == "pool" and not p.get("context"):
            continue  # Stage 1 data: never in a budget
        if part and p.get("attribute"):
            groups.setdefault(p["attribute"], {"pool": [], "test": []})[part].append(i)
    out = {}
    for a, g in sorted(groups.items()):
        if not g["pool"] or not g["test"]:
            continue
        prior = [0.0] * k
        for i in g["pool"]:
            for j, v in enumerate(route(i)):
                prior[j] += v / len(g["pool"])
        out[a] = {
            "pool": [margins(i) for i in g["pool"]],
            "test": [margins(i) for i in g["test"]],
            "prior": prior,
        }
    return out


def log_sigmoid(x):
    return -math.log1p(math.exp(-x)) if x > -30 else x


def loglik(m):
    return max(log_sigmoid(m), -CLIP)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def entropy(p):
    return 0.0 if p <= 0 or p >= 1 else -p * math.log(p) - (1 - p) * math.log(1 - p)


def normalised(logw):
    top = max(logw)
    w = [math.exp(v - top) for v in logw]
    return [v / sum(w) for v in w]


def information(w, margins, prob=sigmoid):
    ps = [min(max(prob(x), 1e-4), 1 - 1e-4) for x in margins]
    mean = sum(a * b for a, b in zip(w, ps))
    return entropy(mean) - sum(a * entropy(p) for a, p in zip(w, ps))


# Rules: (pool, budget, rng, prior) -> picked indices in order (labels: chosen always won).


def rule_random(pool, budget, rng, prior):
    order = list(range(len(pool)))
    rng.shuffle(order)
    return order[:budget]


def rule_bald(pool, budget, rng, prior, eta=1.0, uniform=False, noise=0.0):
    """The shipped rule (eta 1, the context prior, floor 0.01) and its variants: a flat prior,
    a tempered update (eta < 1), a user who answers at random with probability `noise`."""
    k = len(prior)
    logw = [0.0] * k if uniform else [math.log(max(p, 1e-30)) for p in prior]
    prob = (lambda x: (1 - noise) * sigmoid(x) + noise / 2) if noise else sigmoid
    left = list(range(len(pool)))
    rng.shuffle(left)
    picked = []
    while len(picked) < budget:
        w = normalised(logw)
        best = max(left, key=lambda i: information(w, pool[i], prob))
        if information(w, pool[best], prob) < FLOOR:
            best = left[rng.randrange(len(left))]
        left.remove(best)
        picked.append(best)
        for j in range(k):
            logw[j] += eta * (math.log(prob(pool[best][j])) if noise else loglik(pool[best][j]))
    return picked


def rule_top_two(pool, budget, rng, prior):
    """Top-two Thompson sampling: two distinct heads drawn from the flat-prior posterior, the
    pair on which they disagree with the widest margin gap."""
    k = len(prior)
    logw = [0.0] * k
    left = list(range(len(pool)))
    rng.shuffle(left)
    picked = []
    while len(picked) < budget:
        w = normalised(logw)
        a = rng.choices(range(k), w)[0]
        rest = [v if j != a else 0.0 for j, v in enumerate(w)]
        b = rng.choices(range(k), rest)[0] if sum(rest) > 0 else (a + 1) % k

        def gap(i):
            m = pool[i]
            return abs(m[a] - m[b]) + (1e6 if (m[a] > 0) != (m[b] > 0) else 0.0)

        best = max(left, key=gap)
        left.remove(best)
        picked.append(best)
        for j in range(k):
            logw[j] += loglik(pool[best][j])
    return picked


def rule_disagree(pool, budget, rng, prior, top=2):
    """Uniform among the pairs on which the current top heads (by labelled accuracy) disagree
    in sign: each such label tells their accuracy difference without bias."""
    k = len(prior)
    left = list(range(len(pool)))
    rng.shuffle(left)
    picked = []
    while len(picked) < budget:
        if picked:
            score = lambda j: (
                sum(pool[i][j] > 0 for i in picked),
                sum(loglik(pool[i][j]) for i in picked),
            )
        else:
            score = lambda j: prior[j]
        leaders = sorted(range(k), key=score, reverse=True)[:top]
        split = [i for i in left if len({pool[i][j] > 0 for j in leaders}) > 1]
        best = (split or left)[0]
        left.remove(best)
        picked.append(best)
    return picked


def choose_loglik(pool, picked):
    """Stage 2 at tau = 1e-3 with context evidence: the head of largest summed log-likelihood."""
    k = len(pool[0])
    return max(range(k), key=lambda j: sum(loglik(pool[i][j]) for i in picked))


def choose_accuracy(pool, picked):
    """The head right on the most picked pairs (ties by log-likelihood): not what Stage 2 does."""
    k = len(pool[0])
    return max(
        range(k),
        key=lambda j: (sum(pool[i][j] > 0 for i in picked), sum(loglik(pool[i][j]) for i in picked)),
    )


def accuracy(test, head):
    return sum(m[head] > 0 for m in test) / len(test)


RULES = {
    "random": (rule_random, {}),
    "bald (shipped)": (rule_bald, {}),
    "bald, flat prior": (rule_bald, {"uniform": True}),
    "bald, eta 0.3": (rule_bald, {"eta": 0.3}),
    "bald, 20% noise": (rule_bald, {"noise": 0.2}),
    "top-two thompson": (rule_top_two, {}),
    "disagreement of top 2": (rule_disagree, {}),
}


def replay(data, rule, kwargs, budgets, runs, choose):
    values = {b: [] for b in budgets}
    for name, attrs in data:
        for run in range(runs):
            per = {b: [] for b in budgets}
            for a, g in attrs.items():
                rng = random.Random(f"{name}/{run}/{a}")
                picked = rule(g["pool"], max(budgets), rng, g["prior"], **kwargs)
                for b in budgets:
                    per[b].append(accuracy(g["test"], choose(g["pool"], picked[:b])))
            for b in budgets:
                values[b].append(st.mean(per[b]))
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--budgets", default="5,10,15,25,50")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    data = [(m, load(args.cache, m)) for m in args.models]
    pool = min(len(g["pool"]) for _, attrs in data for g in attrs.values())
    print(f"{len(data)} model(s) x {args.runs} runs; mean ± std of the attribute-averaged test accuracy")
    print("rule".ljust(40) + "".join(f"B = {b}".ljust(17) for b in budgets))
    for choose in (choose_loglik, choose_accuracy):
        tag = "" if choose is choose_loglik else ", accuracy choice"
        full = replay(data, rule_random, {}, [pool], 1, choose)[pool]
        print(f"all {pool} pool labels{tag}".ljust(40) + f"{st.mean(full):.4f} ± {st.pstdev(full):.4f}")
        for name, (rule, kwargs) in RULES.items():
            if choose is choose_accuracy and name not in ("random", "bald (shipped)", "disagreement of top 2"):
                continue
            v = replay(data, rule, kwargs, budgets, args.runs, choose)
            cells = "".join(f"{st.mean(v[b]):.4f} ± {st.pstdev(v[b]):.4f}".ljust(17) for b in budgets)
            print((name + tag).ljust(40) + cells, flush=True)


if __name__ == "__main__":
    main()
