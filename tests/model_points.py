"""Test helpers: a built model's values at a random point near its initial point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytensor


def potential_at_random_point(
    model: Any, names: Sequence[str], seed: int = 0, scale: float = 0.3
) -> tuple[float, dict[str, np.ndarray]]:
    """The integrated potential ``integrated_series`` and the named variables at the initial
    point plus N(0, scale^2) noise on every value variable (seeded)."""
    pot = model["integrated_series"]
    outs = model.replace_rvs_by_values([pot, *(model[n] for n in names)])
    fn = pytensor.function(model.value_vars, outs, on_unused_input="ignore")
    point = model.initial_point()
    rng = np.random.default_rng(seed)
    got, *vals = fn(
        *(
            point[v.name] + rng.normal(scale=scale, size=point[v.name].shape)
            for v in model.value_vars
        )
    )
    return float(got), dict(zip(names, vals, strict=True))


def cov_of(values: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """The covariance from the values ``sd_<name>`` and ``corr_<name>``."""
    sd = values[f"sd_{name}"]
    return values[f"corr_{name}"] * np.outer(sd, sd)
