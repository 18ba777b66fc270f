"""micro: MiCRo personalised reward models on numpy arrays, at the Rust library's speed.

Stage 1 (``train``) fits K reward heads and a router on preference pairs; Stage 2 (``adapt``,
``Model.feedback``) weighs the heads for a context or a user; ``Model.score`` gives the
personalised reward of response embeddings. Caches and models are the folders the ``micro``
command reads and writes.

    import micro
    cache = micro.Cache.from_arrays(chosen, rejected, prompt, users=user_ids)
    model = micro.train(cache)
    reward = model.score(responses, prompt_embedding, user="ann")

The reward client for a running ``micro serve`` (OpenRLHF, verl, TRL) is ``micro_client``.
"""

from micro._native import (
    Backbone,
    Cache,
    Model,
    UserState,
    __version__,
    adapt,
    evaluate,
    train,
)

__all__ = [
    "Backbone",
    "Cache",
    "Model",
    "UserState",
    "adapt",
    "evaluate",
    "train",
    "__version__",
]
