"""A TRL reward function (``GRPOTrainer(reward_funcs=[...])``).

TRL calls ``reward_func(prompts, completions, **columns)`` with a batch and takes a list of
floats. Dataset columns arrive as keyword arguments: ``user_id`` and ``context`` (names
configurable) say whom each sample's reward is for. Completions that share a prompt and a
user or context are scored in one ``/v1/score`` call, the groups concurrently::

    from micro_client.trl import micro_reward
    trainer = GRPOTrainer(model=..., reward_funcs=[micro_reward], train_dataset=dataset)
"""

import json
from concurrent.futures import ThreadPoolExecutor

try:
    from .client import MicroClient
except ImportError:
    from micro_client.client import MicroClient

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


def make_reward_func(client=None, user_column="user_id", context_column="context", workers=8):
    """A TRL reward function calling ``client`` (default: from the environment)."""
    state = {"client": client}

    def micro_reward(prompts, completions, **columns):
        if state["client"] is None:
            state["client"] = MicroClient()
        users = columns.get(user_column) or [None] * len(completions)
        contexts = columns.get(context_column) or [None] * len(completions)
        groups = {}
        for i, (p, c) in enumerate(zip(prompts, completions)):
            key = (json.dumps(_prompt(p)), users[i] or None, contexts[i] or None)
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
