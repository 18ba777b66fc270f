"""numpy arrays in every layout and float type are read as the values they show: a cache built
from a Fortran-ordered, strided, reversed or float64/float16 array holds the same rows as one
built from the C-contiguous float32 array, and scoring reads them alike."""

import numpy as np
import pytest

import micro

LAYOUTS = {
    "fortran": np.asfortranarray,
    "every other row": lambda a: np.repeat(a, 2, axis=0)[::2],
    "every other column": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
    "reversed rows": lambda a: a[::-1].copy()[::-1],
    "transposed": lambda a: np.ascontiguousarray(a.T).T,
    "float64": lambda a: a.astype(np.float64),
    "float16 values": lambda a: a.astype(np.float16),
    "list": lambda a: a.tolist(),
}


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(5)
    # float16-exact values, so that every float type holds the same numbers.
    return [rng.integers(-64, 64, size=(12, 5)).astype(np.float32) / 8 for _ in range(3)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_cache_from_any_layout_holds_the_same_rows(arrays, layout):
    cache = micro.Cache.from_arrays(*(LAYOUTS[layout](a) for a in arrays))
    for got, want in zip([cache.chosen, cache.rejected, cache.prompt], arrays):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_scoring_reads_any_layout_alike(arrays, layout, trained):
    model = micro.Model.load(trained)
    rng = np.random.default_rng(6)
    h = rng.standard_normal((7, model.dim)).astype(np.float16).astype(np.float32)
    x = rng.standard_normal((7, model.prompt_dim)).astype(np.float16).astype(np.float32)
    as_given = LAYOUTS[layout]
    np.testing.assert_array_equal(model.rewards(as_given(h)), model.rewards(h))
    np.testing.assert_array_equal(model.score(as_given(h), as_given(x)), model.score(h, x))
