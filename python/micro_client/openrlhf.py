"""OpenRLHF's reward-function file form.

OpenRLHF accepts a Python file instead of a URL as its remote reward model
(``--reward.remote_url /path/to/openrlhf.py``; releases before 0.11: ``--remote_rm_url``) and
calls its ``reward_func(queries, prompts, labels)``. This one forwards the call to micro's
``/get_reward`` with the key from ``MICRO_API_KEY`` in a header, so the key stays out of
command lines and logs. Print the path to pass with::

    python -c "import micro_client.openrlhf as m; print(m.__file__)"

Labels (``--data.label_key``) follow micro's convention: a JSON object string with
``user_id`` and/or ``context``, or a plain user id.
"""

try:  # imported as part of the package
    from .client import MicroClient
except ImportError:  # loaded by OpenRLHF from its path, outside the package
    from micro_client.client import MicroClient

_client = None


def reward_func(queries, prompts, labels):
    """Rewards for OpenRLHF: ``{"rewards", "scores", "extra_logs"}``, one value per query."""
    global _client
    if _client is None:
        _client = MicroClient()
    return _client.get_reward(queries, prompts, labels)
