"""The brms-style methods of a mechanism fit (mixed into
:class:`~bayes_alliance.mechanisms.fit.MechanismResult`), as far as they mean something for
k series: ``loo`` / ``compare`` (leave one patient out; a mechanism fit has no per-session
values), ``hypothesis`` on its parameters and effects, ``prior_summary``. ``pp_check``,
``bayes_r2`` and ``conditional_effects`` refuse with the reason and what to use instead.

The analysis and report layers are reached through the late-bound table of
:mod:`bayes_alliance.inference.methods` (this layer is their sibling or below them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core.intervals import DEFAULT_CI_PROB
from bayes_alliance.effects import hypothesis as hyp
from bayes_alliance.inference.methods import late


class MechanismMethods:
    """brms-style methods of a mechanism fit (``MechanismResult`` supplies ``idata``,
    ``parameters`` and ``effect_draws``)."""

    idata: xr.DataTree

    if TYPE_CHECKING:  # provided by MechanismResult

        @property
        def parameters(self) -> list[str]: ...
        def effect_draws(self) -> dict[str, np.ndarray]: ...

    def loo(self, unit: str = "patient", chunk: int | None = None) -> Any:
        """PSIS-LOO leaving one patient out (:func:`bayes_alliance.analysis.comparison.loo`)."""
        return late("loo")(self, unit, chunk)

    def compare(
        self, *others: Any, names: Sequence[str] | None = None, unit: str = "patient"
    ) -> pd.DataFrame:
        """Compare with other mechanism fits of the same data by leave-one-patient-out."""
        fits = [self, *others]
        labels = list(names) if names is not None else [f"model_{i + 1}" for i in range(len(fits))]
        if len(labels) != len(fits) or len(set(labels)) != len(labels):
            raise ValueError(f"names must be {len(fits)} distinct labels, got {labels}")
        return late("compare")(dict(zip(labels, fits, strict=True)), unit)

    def hypothesis(
        self, hypotheses: str | Iterable[str], ci_prob: float = DEFAULT_CI_PROB
    ) -> pd.DataFrame:
        """Posterior probability of directional hypotheses about the model's scalar parameters
        and effects (e.g. ``"indirect_effect_within > 0"``); see
        :mod:`bayes_alliance.effects.hypothesis`."""
        post = self.idata.posterior
        draws = {n: np.asarray(post[n].values) for n in self.parameters if post[n].ndim == 2}
        effects = {k: np.asarray(v) for k, v in self.effect_draws().items() if np.ndim(v) == 2}
        draws = {**effects, **draws}
        return hyp.hypothesis(hypotheses, draws, list(draws), ci_prob)

    def prior_summary(self) -> pd.DataFrame:
        """The priors this fit used (:func:`bayes_alliance.report.mechanism_priors.priors_table`)."""
        return late("mechanism_prior_summary")(self)

    def pp_check(self, kind: str = "density", **kwargs: Any) -> Any:
        """Refused: a mechanism fit's replicates are ``posterior_predictive()`` (series and end
        outcome); the report's check plots them."""
        raise ValueError(
            "pp_check is the joint model's; for a mechanism fit use posterior_predictive() "
            "(replicated series and end outcome with the observed values) or the report's "
            "predictive check (write_report)"
        )

    def bayes_r2(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Refused: R-squared by variance component is defined for the joint model's two
        equations."""
        raise ValueError(
            "bayes_r2 (R-squared by variance component) is defined for the joint model's two "
            "equations; a mechanism fit reports its effects (effects()) instead"
        )

    def conditional_effects(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: the impulse response is implemented for the joint model's VAR(1)."""
        raise ValueError(
            "conditional_effects (the impulse response of the outcome to an alliance shock) is "
            "implemented for the joint model (fit); for a mechanism fit read the lagged paths "
            "and mediation effects in effects()"
        )


__all__ = ["MechanismMethods"]
