"""A TRL reward function (``GRPOTrainer(reward_funcs=[...])``).

TRL calls ``reward_func(prompts, completions, **columns)`` with a batch and takes a list of
floats; the dataset's columns arrive as keyword arguments. Whom each sample's reward is for
comes from the columns ``user_id`` and ``context`` when the dataset has them, or from the
columns you name: ``make_reward_func(label_column="persona")`` reads a label column in micro's
convention (as OpenRLHF's ``--data.label_key``: a JSON object string or dict with ``user_id``
and/or ``context``, or a plain user id); ``user_column`` and ``context_column`` name plain
columns. A named column the batch lacks raises ``KeyError``, so a misspelt name cannot fall
back to unpersonalised rewards. Completions that share a prompt and a user or context are
scored in one ``/v1/score`` call, the groups concurrently::

    from micro_client.trl import make_reward_func
    trainer = GRPOTrainer(model=..., reward_funcs=[make_reward_func(label_column="persona")], ...)
"""

import json
from concurrent.futures import ThreadPoolExecutor

try:
    from .client import MicroClient, parse_label
except ImportError:
    from micro_client.client import MicroClient, parse_label

# The server's default --max-texts: responses per /v1/score call.
MAX_TEXTS = 64


def _text(content):
    """Message content as text (TRL may give a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _prompt(prompt):
    if isinstance(prompt, str):
        return prompt
    return [{"role": m["role"], "content": _text(m["content"])} for m in prompt]


def _completion(completion):
    """A completion's text: the string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    turns = [m for m in completion if m.get("role") == "assistant"] or list(completion)
    return _text(turns[-1]["content"]) if turns else ""


def _whom(columns, n, label_column, user_column, context_column):
    """(user_id, context) per sample, from the named columns or, with none named, from
    ``user_id`` and ``context`` when present."""
    named = [c for c in (label_column, user_column, context_column) if c is not None]
    missing = [c for c in named if c not in columns]
    if missing:
        raise KeyError(
            f"micro_reward: the batch has no column {missing[0]!r} (it has {sorted(columns)}): "
            "name the dataset column that says whom each sample is for"
        )
    if not named:
        user_column = "user_id" if "user_id" in columns else None
        context_column = "context" if "context" in columns else None
    whom = []
    for i in range(n):
        user, context = None, None
        if label_column is not None:
            user, context = parse_label(columns[label_column][i], f"{label_column}[{i}]")
        if user_column is not None:
            user = columns[user_column][i] or user
        if context_column is not None:
            context = columns[context_column][i] or context
        whom.append((user or None, context or None))
    return whom


def make_reward_func(client=None, label_column=None, user_column=None, context_column=None, workers=8):
    """A TRL reward function calling ``client`` (default: from the environment)."""
    state = {"client": client}

    def micro_reward(prompts, completions, **columns):
        if state["client"] is None:
            state["client"] = MicroClient()
        whom = _whom(columns, len(completions), label_column, user_column, context_column)
        groups = {}
        for i, (p, c) in enumerate(zip(prompts, completions)):
            key = (json.dumps(_prompt(p)),) + whom[i]
            groups.setdefault(key, []).append((i, _completion(c)))
        calls = []
        for (prompt, user, context), items in groups.items():
            for start in range(0, len(items), MAX_TEXTS):
                calls.append((json.loads(prompt), user, context, items[start : start + MAX_TEXTS]))
        rewards = [0.0] * len(completions)

        def run(call):
            prompt, user, context, items = call
            answer = state["client"].score([t for _, t in items], prompt=prompt, user_id=user, context=context)
            for (i, _), r in zip(items, answer["rewards"]):
                rewards[i] = float(r)

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls)))) as pool:
            list(pool.map(run, calls))
        return rewards

    return micro_reward


micro_reward = make_reward_func()
