"""Ctrl-C stops a long training cleanly: the training ends at its next step (not at its last
epoch), `KeyboardInterrupt` is raised, nothing is left running or written, and the next call
works. An exception raised by the progress callback stops it the same way."""

import os
import signal

import numpy as np
import pytest

import micro

EPOCHS = 400


def long_cache():
    """Enough pairs that one epoch is many steps, for a training of EPOCHS epochs."""
    rng = np.random.default_rng(0)
    n, d = 4000, 32
    m = lambda: rng.normal(size=(n, d)).astype(np.float32)
    return micro.Cache.from_arrays(m(), m(), m(), prompts=[f"q{i // 2}" for i in range(n)])


# One training of EPOCHS epochs: no search, no early stop, no cross-fit.
LONG = dict(epochs=EPOCHS, min_epochs=EPOCHS, patience=EPOCHS, lr=0.01, alpha=0.05, keep_heads=True, users="off", cross_fit=0)


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler (KeyboardInterrupt) for the test: a process started in the
    background of a non-interactive shell inherits SIGINT ignored, and Python keeps that."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_stops_a_long_training_at_its_next_step(tmp_path, ctrl_c_raises):
    cache = long_cache()
    epochs = []

    def progress(event):
        if event["event"] == "epoch":
            epochs.append(event["epoch"])
            if len(epochs) == 1:
                # Ctrl-C, as the terminal sends it.
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        micro.train(cache, progress=progress, **LONG)
    # Stopped within a few epochs of the signal (the caller looks for it every 50 ms), far from
    # the end: the training did not run on to its last epoch before the exception.
    assert 1 <= len(epochs) < EPOCHS / 4, epochs
    seen = len(epochs)

    # Nothing runs on: no more progress arrives, and the module trains again.
    model = micro.train(cache, epochs=2, min_epochs=1, lr=0.01, alpha=0.05, keep_heads=True, users="off", cross_fit=0)
    assert len(epochs) == seen
    model.save(tmp_path / "after")
    assert (tmp_path / "after" / "model.safetensors").is_file()


class Enough(Exception):
    pass


def test_an_exception_from_the_progress_callback_stops_the_training():
    epochs = []

    def progress(event):
        if event["event"] == "epoch":
            epochs.append(event["epoch"])
            raise Enough("three is enough")

    with pytest.raises(Enough, match="three is enough"):
        micro.train(long_cache(), progress=progress, **LONG)
    assert epochs == [1]
