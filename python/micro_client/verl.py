"""verl's custom reward function.

Point verl at this file::

    custom_reward_function.path=$(python -c "import micro_client.verl as m; print(m.__file__)")
    custom_reward_function.name=compute_score

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` per response
and does not pass the prompt: put it in the dataset's ``extra_info`` as ``prompt`` (text or
messages) or ``question``; without either, the call raises ``ValueError`` (pass
``require_prompt=False`` to score without a prompt, with a warning). Whom to personalise for
comes from ``extra_info["user_id"]`` / ``extra_info["context"]``, or from the label in
``extra_info[label_key]`` with ``+custom_reward_function.reward_kwargs.label_key=persona``.
``ground_truth`` is verl's answer key (``"42"``), not a user: it is read as a label only with
``reward_kwargs.ground_truth_is_label=true``.
"""

import warnings

try:  # imported as part of the package
    from .client import MicroClient, parse_label
except ImportError:  # loaded by verl from its path, outside the package
    from micro_client.client import MicroClient, parse_label

_client = None


def _whom(info, ground_truth, label_key, ground_truth_is_label):
    """The label ``{"user_id", "context"}`` for a sample (empty: the router on the prompt)."""
    user, context = None, None
    if ground_truth_is_label:
        user, context = parse_label(ground_truth, "ground_truth")
    if label_key is not None:
        if label_key not in info:
            raise KeyError(f"extra_info has no {label_key!r} (label_key); it has {sorted(info)}")
        user, context = parse_label(info[label_key], f"extra_info[{label_key!r}]")
    user = info.get("user_id") or user
    context = info.get("context") or context
    return {k: v for k, v in (("user_id", user), ("context", context)) if v}


def compute_score(
    data_source,
    solution_str,
    ground_truth,
    extra_info=None,
    label_key=None,
    ground_truth_is_label=False,
    require_prompt=True,
    **kwargs,
):
    """The personalised reward of ``solution_str`` as a float."""
    global _client
    if _client is None:
        _client = MicroClient()
    info = extra_info if isinstance(extra_info, dict) else {}
    prompt = info.get("prompt", info.get("question"))
    if prompt is None:
        message = "extra_info has no 'prompt' or 'question': verl does not pass the prompt to compute_score, so put it in the dataset's extra_info"
        if require_prompt:
            raise ValueError(message + " (or pass require_prompt=False to score without one)")
        warnings.warn(message + "; scoring without a prompt", stacklevel=2)
    if hasattr(prompt, "tolist"):  # verl reads parquet: message lists arrive as numpy arrays
        prompt = [dict(m) for m in prompt.tolist()]
    label = _whom(info, ground_truth, label_key, ground_truth_is_label)
    return _client.reward(solution_str, prompt=prompt, label=label or None)
