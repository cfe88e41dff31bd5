"""The convergence check travels with the numbers: effects.csv and r2.csv carry a ``converged``
column that survives a plain ``pandas.read_csv``, and the Markdown and LaTeX tables of a fit
whose check failed say so in caption and note."""

from __future__ import annotations

import dataclasses
import warnings

import pandas as pd
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.cli.output import write_fit_folder
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.fit import FitResult, fit


@pytest.fixture(scope="module")
def unconverged() -> FitResult:
    """Two chains of 20 draws: too few for the ESS rule, so the check fails."""
    df, _ = simulate(seed=4, n_therapists=4, patients_per_therapist=3, sessions=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        return fit(data, draws=20, tune=40, chains=2, random_seed=3, progressbar=False)


def _written(result: FitResult, folder) -> dict[str, object]:
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_fit_folder(result, folder, 0.94)
    out: dict[str, object] = {}
    for stem in ("effects", "r2"):
        out[f"{stem}.csv"] = pd.read_csv(folder / f"{stem}.csv")
        for ext in ("md", "tex"):
            out[f"{stem}.{ext}"] = (folder / f"{stem}.{ext}").read_text()
    return out


def test_failed_check_is_in_every_effects_and_r2_table(unconverged, tmp_path):
    assert not unconverged.convergence.ok
    files = _written(unconverged, tmp_path / "o")
    for stem in ("effects", "r2"):
        table = files[f"{stem}.csv"]
        assert isinstance(table, pd.DataFrame) and len(table) > 0
        assert table["converged"].dtype == bool and not table["converged"].any()
        for ext in ("md", "tex"):
            text = str(files[f"{stem}.{ext}"])
            assert "NOT CONVERGED, do not report" in text, (stem, ext)
            assert "convergence check failed" in text, (stem, ext)
    # The summary keeps its columns (its rows have their own R-hat and ESS).
    assert "converged" not in pd.read_csv(tmp_path / "o" / "summary.csv").columns


def test_passed_check_leaves_the_tables_unflagged(unconverged, tmp_path):
    """The same draws with a check that passed (a stand-in for a converged fit): the column
    says True and the manuscript tables carry no warning."""
    ok = dataclasses.replace(unconverged.convergence, problems=[], advice=[])
    result = dataclasses.replace(unconverged, convergence=ok)
    files = _written(result, tmp_path / "o")
    for stem in ("effects", "r2"):
        table = files[f"{stem}.csv"]
        assert isinstance(table, pd.DataFrame) and table["converged"].all()
        assert "NOT CONVERGED" not in str(files[f"{stem}.md"]) + str(files[f"{stem}.tex"])
