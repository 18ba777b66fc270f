"""micro-reward-client: personalised rewards from ``micro serve`` for RL trainers.

- :class:`MicroClient`: ``/v1/score``, OpenRLHF's ``/get_reward``, the one-sample reward
- :func:`micro_client.openrlhf.reward_func`: OpenRLHF's reward-function file form
- :func:`micro_client.verl.compute_score`: verl's custom reward function
- :func:`micro_client.trl.micro_reward`: a TRL ``reward_funcs`` callable

Standard library only. The server and key come from ``MICRO_URL`` and ``MICRO_API_KEY``.
"""

from .client import MicroClient, MicroError, label, parse_label
from . import openrlhf, trl, verl

__all__ = ["MicroClient", "MicroError", "label", "parse_label", "openrlhf", "trl", "verl"]
__version__ = "0.1.0"
