"""Shared fixtures. Reference data live in ../shared/reference beside the checkout (CI has them)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

REFERENCE = Path(
    os.environ.get(
        "BAYES_ALLIANCE_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (set BAYES_ALLIANCE_REFERENCE)")
    return REFERENCE


def long_frame(rows: list[tuple]) -> pd.DataFrame:
    """(therapist, patient, session, x, y) tuples -> DataFrame."""
    return pd.DataFrame(rows, columns=["therapist", "patient", "session", "x", "y"])


ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "x",
    "outcome": "y",
}
