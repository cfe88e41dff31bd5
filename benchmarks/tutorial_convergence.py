"""Do the tutorials' fits pass their own convergence check for other seeds than the shipped one?

Usage::

    python benchmarks/tutorial_convergence.py [--offsets 0 100 200] [--notebooks 01 03]

Executes each tutorial in ``notebooks/`` (the publication-grade sampler profile, as a reader
runs it) once per seed offset: every call of :func:`bayes_alliance.inference.fit.fit` inside it gets
``random_seed + offset``. Prints one line per fit: notebook, offset, seed, whether the check
passed, max R-hat, min bulk ESS (of all draws) and the worst parameter. Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--offsets", nargs="+", type=int, default=[0, 100, 200])
    ap.add_argument("--notebooks", nargs="*", default=[])
    args = ap.parse_args()
    os.environ.pop("BAYES_ALLIANCE_PROFILE", None)  # the reader's profile, not the test one
    sys.path.insert(0, str(ROOT / "docs"))
    import build  # docs/build.py: executes a percent-format notebook

    from bayes_alliance.inference import api
    from bayes_alliance.inference import fit as fitting

    original = fitting.fit
    records: list[tuple[str, int, int, object]] = []
    current = {"name": "", "offset": 0}

    def seeded(*a: object, random_seed: int | None = None, **kw: object) -> object:
        seed = (random_seed or 0) + current["offset"]
        result = original(*a, random_seed=seed, **kw)  # type: ignore[arg-type]
        records.append((str(current["name"]), int(current["offset"]), seed, result))
        return result

    fitting.fit = seeded  # type: ignore[assignment]
    api.fit = seeded  # type: ignore[assignment]
    books = sorted((ROOT / "notebooks").glob("0*.py"))
    if args.notebooks:
        books = [b for b in books if any(b.name.startswith(n) for n in args.notebooks)]
    print("notebook | offset | seed | passed | max R-hat | min bulk ESS | draws | worst | s")
    for book in books:
        for offset in args.offsets:
            current.update(name=book.stem, offset=offset)
            start = len(records)
            t0 = time.perf_counter()
            build.run_notebook(book)
            wall = time.perf_counter() - t0
            for name, off, seed, result in records[start:]:
                c = result.convergence  # type: ignore[attr-defined]
                summary = result.summary()  # type: ignore[attr-defined]
                worst = str(summary["ess_bulk"].idxmin())
                print(
                    f"{name} | {off} | {seed} | {c.ok} | {c.max_r_hat:.3f} | "
                    f"{c.min_ess_bulk:.0f} | {c.n_draws} | {worst} | {wall:.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
