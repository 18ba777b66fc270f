"""verl's custom reward function.

Point verl at this file::

    custom_reward_function.path=$(python -c "import micro_client.verl as m; print(m.__file__)")
    custom_reward_function.name=compute_score

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` per response
and does not pass the prompt: put it in the dataset's ``extra_info`` as ``prompt`` (text or
messages) or ``question``. Whom to personalise for comes from ``extra_info["user_id"]`` /
``extra_info["context"]`` when present, else from ``ground_truth`` read as a label (a JSON
object string with ``user_id`` and/or ``context``, or a plain user id).
"""

try:  # imported as part of the package
    from .client import MicroClient
except ImportError:  # loaded by verl from its path, outside the package
    from micro_client.client import MicroClient

_client = None


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """The personalised reward of ``solution_str`` as a float."""
    global _client
    if _client is None:
        _client = MicroClient()
    info = extra_info if isinstance(extra_info, dict) else {}
    prompt = info.get("prompt", info.get("question"))
    if hasattr(prompt, "tolist"):  # verl reads parquet: message lists arrive as numpy arrays
        prompt = [dict(m) for m in prompt.tolist()]
    who = {k: info[k] for k in ("user_id", "context") if info.get(k)}
    label = who if who else ground_truth
    return _client.reward(solution_str, prompt=prompt, label=label)
