"""Type stubs of the native module (crates/micro-py). The keyword defaults are `micro`'s flags'
(python/tests/test_train.py checks them against `micro train/adapt/embed --help`)."""

import os
from typing import Any, Callable, Literal, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = npt.ArrayLike
Path = Union[str, "os.PathLike[str]"]
Prompt = Union[str, Sequence[dict]]
Progress = Optional[Callable[[dict], None]]
User = Union[None, str, "UserState"]

class Cache:
    """Preference pairs and their embeddings: `chosen`, `rejected` (h(x, a), `[n, dim]`),
    `prompt` (e(x), `[n, prompt_dim]`) and optionally `context_prompt` (e(x, c)), with each
    pair's prompt, context, attribute, user and split; the folder `micro embed` writes."""

    @staticmethod
    def load(path: Path) -> "Cache":
        """Opens a cache folder (from `micro embed`, `micro synth` or `Cache.save`)."""
    @staticmethod
    def from_arrays(
        chosen: ArrayLike,
        rejected: ArrayLike,
        prompt: ArrayLike,
        *,
        context_prompt: Optional[ArrayLike] = None,
        prompts: Optional[Sequence[Prompt]] = None,
        contexts: Optional[Sequence[Optional[str]]] = None,
        attributes: Optional[Sequence[Optional[str]]] = None,
        users: Optional[Sequence[Optional[str]]] = None,
        splits: Optional[Sequence[Optional[Literal["train", "test"]]]] = None,
        backbone: str = "external",
    ) -> "Cache":
        """A cache from numpy arrays, one row per pair; each array is copied once into the
        cache. Per-pair lists have one entry per pair (`None` where a pair has none); without
        `prompts`, each pair is a prompt of its own."""
    def save(self, path: Path, *, dtype: Literal["f32", "f16", "bf16"] = "f32") -> None:
        """Writes the cache folder (embeddings.safetensors, pairs.jsonl, meta.json)."""
    def __len__(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def prompt_dim(self) -> int: ...
    @property
    def meta(self) -> dict:
        """meta.json as a dict."""
    @property
    def pairs(self) -> list:
        """The pairs as pairs.jsonl holds them, one dict per row."""
    @property
    def chosen(self) -> npt.NDArray[np.float32]: ...
    @property
    def rejected(self) -> npt.NDArray[np.float32]: ...
    @property
    def prompt(self) -> npt.NDArray[np.float32]: ...
    @property
    def context_prompt(self) -> Optional[npt.NDArray[np.float32]]: ...

class UserState:
    """A user's weights over a model's experts (its K heads, then the gate), updated by Hedge
    with each piece of feedback: the state `micro serve` keeps per user."""

    @property
    def weights(self) -> npt.NDArray[np.float32]:
        """The weights over the experts, `[K + 1]`."""
    @property
    def updates(self) -> int: ...
    @property
    def user_id(self) -> Optional[str]: ...
    def to_dict(self) -> dict:
        """The state as user-states.jsonl stores it."""
    @staticmethod
    def from_dict(state: dict, user_id: Optional[str] = None) -> "UserState": ...

class Model:
    """K linear reward heads and a gate that mixes them, with the cross-fitted evidence and
    the users adapted by id; the folder `micro train` and `micro adapt` write."""

    @staticmethod
    def load(path: Path) -> "Model":
        """Reads a model folder."""
    def save(self, path: Path) -> None:
        """Writes the model folder (with evidence.* and user-states.jsonl when it has them)."""
    @property
    def k(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def prompt_dim(self) -> int: ...
    @property
    def method(self) -> str: ...
    @property
    def config(self) -> dict:
        """config.json as a dict."""
    @property
    def heads(self) -> npt.NDArray[np.float32]:
        """`[K, dim]`."""
    @property
    def shared_head(self) -> Optional[int]: ...
    @property
    def table_users(self) -> list[str]:
        """The users of Stage 1's per-user table."""
    @property
    def users(self) -> list[str]:
        """The users adapted by id."""
    def rewards(self, responses: ArrayLike) -> npt.NDArray[np.float32]:
        """Each head's reward of each response `[n, dim]`: `[n, K]`."""
    def weights(self, prompt: Optional[ArrayLike] = None, *, user: User = None) -> npt.NDArray[np.float32]:
        """The mixture weights over the heads for router inputs `[prompt_dim]` (gives `[K]`) or
        `[n, prompt_dim]` (gives `[n, K]`), for nobody (the router), a user id or a state."""
    def score(self, responses: ArrayLike, prompt: Optional[ArrayLike] = None, *, user: User = None) -> npt.NDArray[np.float32]:
        """The personalised reward sum_k w_k r_k of each response: `[n]`."""
    def new_user(self, user_id: Optional[str] = None, *, rate: Union[None, str, float] = None) -> UserState:
        """A new user at Stage 2's prior; `rate`: "bayes" (the default, as `micro serve --rate`'s), "anytime" or an eta."""
    def user(self, user_id: str) -> UserState:
        """An adapted user's state (a copy); KeyError if not adapted."""
    def fit(self, user: UserState) -> dict:
        """What the user's weights favour: a head, or the shared reward."""
    def feedback(self, user: UserState, chosen: ArrayLike, rejected: ArrayLike, prompt: Optional[ArrayLike] = None) -> None:
        """Folds `chosen[i]` preferred to `rejected[i]` into `user` (the server's Hedge update)."""
    def next_question(
        self, user: UserState, first: ArrayLike, second: ArrayLike, prompt: Optional[ArrayLike] = None, *, seed: int = 0
    ) -> dict:
        """The candidate pair to ask next: {"index", "information", "p_first"}."""

class Backbone:
    """A frozen transformer from a Hugging Face model folder, as `micro embed --model` loads it."""

    @staticmethod
    def load(
        path: Path,
        *,
        context: Literal["prefix", "system", "none"] = "prefix",
        response_text: Literal["last-turn", "transcript", "response"] = "last-turn",
        prompt_text: Literal["last-turn", "transcript"] = "last-turn",
        batch_size: int = 32,
        max_len: Optional[int] = None,
        device: str = "cpu",
    ) -> "Backbone": ...
    @property
    def dim(self) -> int: ...
    @property
    def prompt_dim(self) -> int: ...
    @property
    def info(self) -> dict: ...
    @property
    def description(self) -> dict: ...
    def embed_responses(
        self, prompts: Sequence[Prompt], responses: Sequence[str], contexts: Optional[Sequence[Optional[str]]] = None
    ) -> npt.NDArray[np.float32]:
        """h(x, a) of each response: `[n, dim]`."""
    def embed_prompts(self, prompts: Sequence[Prompt], contexts: Optional[Sequence[Optional[str]]] = None) -> npt.NDArray[np.float32]:
        """e(x), or e(x, c) with contexts: `[n, prompt_dim]`."""
    def embed_pairs(
        self, pairs: Sequence[dict], output: Path, *, dtype: Literal["f32", "f16", "bf16"] = "f32", progress: Progress = None
    ) -> Cache:
        """Embeds pairs into the cache folder `output`, as `micro embed` does."""

def train(
    cache: Union[Cache, Path],
    *,
    method: Literal["micro", "single", "static", "shared-base"] = "micro",
    heads: Union[None, int, Literal["auto"]] = None,
    keep_heads: bool = False,
    users: Literal["auto", "on", "off"] = "auto",
    epochs: int = 100,
    lr: Optional[float] = None,
    alpha: Optional[float] = None,
    router_input: Literal["pair", "prompt"] = "pair",
    batch_size: int = 32,
    router: Literal["mlp", "linear"] = "mlp",
    hidden: int = 128,
    activation: Literal["relu", "tanh"] = "relu",
    seed: int = 42,
    holdout: float = 0.1,
    patience: int = 10,
    min_epochs: int = 30,
    warmup: float = 0.05,
    weight_decay: float = 0.0,
    cross_fit: int = 5,
    progress: Progress = None,
) -> Model:
    """Stage 1 as `micro train` runs it (the held-out search, --heads auto, the cross-fit)."""

def adapt(
    model: Model,
    cache: Cache,
    *,
    budget: int = 50,
    tau: float = 1.0,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    output_layer_only: bool = False,
    seed: int = 0,
    select: Literal["random", "active"] = "random",
    pool_inputs: bool = True,
    evidence: Literal["context", "pair"] = "context",
) -> Model:
    """Stage 2 as `micro adapt` runs it: contexts route the router, users known by id get
    weights of their own."""

def evaluate(model: Model, cache: Cache, *, split: Literal["test", "train", "all"] = "test", label: Optional[str] = None) -> dict:
    """`micro eval --json` as a dict."""
