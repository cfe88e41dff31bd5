"""Sampler settings for the tutorials: BAYES_ALLIANCE_PROFILE=small (used by `make test`) keeps
them quick; the default gives publication-grade runs."""

import os

SMALL = os.environ.get("BAYES_ALLIANCE_PROFILE") == "small"
DRAWS = 150 if SMALL else 1000
TUNE = 200 if SMALL else 1000
