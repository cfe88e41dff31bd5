"""A fit whose compiled kernels are cached, sampled without importing PyMC or PyTensor.

The compile cache (:mod:`bayes_alliance.inference.cache`) is keyed by the model's graph, so a
process has to build the ``pm.Model`` (and import PyMC and PyTensor, about 2.5 s) before it can
look an entry up. A second, cheaper key is computed from what the graph is made of:

``pre-key = SHA-256(format, data, spec, package source, library versions, configuration, target)``

- data: every array and table a :class:`~bayes_alliance.data.session_data.SessionData` holds
  (its values, not only its layout: the entry stores what the model's data containers and
  initial point are for these data);
- spec: ``ModelSpec.to_dict()``;
- package source: SHA-256 of every ``.py`` file of the installed ``bayes_alliance`` (editing the
  model's code changes it);
- library versions: :func:`bayes_alliance.core.versions.library_versions` (PyMC, PyTensor,
  nutpie, Numba, ... read from the installed metadata, not imported) and the Python
  implementation, as the graph key;
- configuration: the environment variables and files PyTensor and Numba read their settings
  from (``PYTENSOR_FLAGS``, ``PYTENSORRC``, ``~/.pytensorrc``, ``NUMBA_*``);
- target: the LLVM target (triple, CPU, features), as the graph key.

A fit that finds no warm entry builds the model as before and, after the kernels were compiled
or loaded under the graph key, writes a warm entry under the pre-key: the graph key itself,
the data containers' values as nutpie binds them, the posterior's dims and coords, the
``constant_data`` and ``observed_data`` groups, and the initial-point function in numpy form
(below). A later fit with the same pre-key reads that entry, loads the kernels of the graph
key's entry (whose own checks still apply: magic, checksum, format, key) and samples with
nutpie; a warm entry whose graph entry is gone, or that cannot be read, is ignored and the fit
takes the full path. A changed source file, spec, data set, library version or setting changes
the pre-key, so a stale entry is never found.

Initial point. nutpie starts each chain at PyMC's initial point: the support point of every free
variable in the sampler's space, plus U(-1, 1) jitter drawn from one generator per variable,
``np.random.Generator(PCG64(child))`` with the children ``SeedSequence(seed).spawn(n)``
(``pymc.pytensorf.reseed_rngs``), in the order PyMC's compiled function lists its generators.
The warm entry stores the support point and, per variable, the index of its generator, found
by matching PyMC's own output; the entry is written only when the numpy function reproduces
PyMC's bit for bit for several seeds. So the draws of a seed are the same whether a fit took
the warm path or not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from bayes_alliance.inference import cache
from bayes_alliance.inference.native_code import CacheEntryError

FORMAT = 1
_CHECK_SEEDS = (0, 1, 2**31 - 1, 123456789)


@lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 of every ``.py`` file of the package (relative path and bytes)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _configuration() -> dict[str, Any]:
    """The settings PyTensor and Numba read from the environment and from PyTensor's files."""
    env = {k: v for k, v in os.environ.items() if k.startswith("NUMBA_")}
    rc_paths = os.environ.get("PYTENSORRC", "~/.pytensorrc:~/.pytensorrc.txt")
    rc: dict[str, str] = {}
    for name in rc_paths.split(os.pathsep):
        path = Path(name).expanduser()
        if path.is_file():
            rc[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "PYTENSOR_FLAGS": os.environ.get("PYTENSOR_FLAGS", ""),
        "PYTENSORRC": rc_paths,
        "rc": rc,
        "numba": env,
    }


def data_fingerprint(data: Any) -> str:
    """SHA-256 of every field of a ``SessionData`` (arrays by dtype, shape and bytes; tables by
    columns, dtypes, index and values; the rest by ``repr``)."""
    import pandas as pd

    h = hashlib.sha256()
    # The fields only: a value cached on the object later must not change the key.
    for name in sorted(f.name for f in dataclasses.fields(data)):
        value = getattr(data, name)
        h.update(f"{name}:".encode())
        if isinstance(value, np.ndarray) and value.dtype.kind != "O":
            arr = np.ascontiguousarray(value)
            h.update(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes())
        elif isinstance(value, pd.DataFrame):
            h.update(repr((list(value.columns), [str(t) for t in value.dtypes])).encode())
            h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        elif isinstance(value, np.ndarray):  # object ids
            h.update(repr(value.tolist()).encode())
        else:
            h.update(repr(value).encode())
        h.update(b"\n")
    return h.hexdigest()


def pre_key(data: Any, spec: Any, kind: str = "main") -> str:
    """The key of a warm entry (see the module's docstring); no PyMC or PyTensor import."""
    parts = {
        "format": FORMAT,
        "kind": kind,
        "data": data_fingerprint(data),
        "spec": spec.to_dict(),
        "source": source_hash(),
        "versions": cache._versions(),
        "configuration": _configuration(),
        "target": [str(t) for t in cache._target()],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _path(folder: Path, pre: str) -> Path:
    return folder / f"warm-{pre}.pkl"


# --------------------------------------------------------------------------------------------
# The initial point in numpy


@dataclass(frozen=True)
class InitialPoint:
    """PyMC's jittered initial point (``make_initial_point_fn`` with support points, every free
    variable jittered, in the sampler's space) as nutpie reads it: a flat float64 array.

    ``base[k]`` is variable k's support point (transformed), ``generator[k]`` the position of
    its jitter generator among the ``n_generators`` children of ``SeedSequence(seed)``.
    """

    base: tuple[np.ndarray, ...]
    generator: tuple[int, ...]
    n_generators: int

    def values(self, seed: Any) -> list[np.ndarray]:
        children = np.random.SeedSequence(seed).spawn(self.n_generators)
        out = []
        for base, j in zip(self.base, self.generator, strict=True):
            rng = np.random.Generator(np.random.PCG64(children[j]))
            out.append(base + rng.uniform(-1, 1, size=base.shape))
        return out

    def __call__(self, seed: Any = None) -> np.ndarray:
        return np.concatenate([v.ravel() for v in self.values(seed)]).astype("float64")


def _initial_point(model: Any, names: list[str]) -> tuple[InitialPoint | None, str | None]:
    """The numpy form of PyMC's initial-point function of ``model`` (as
    :func:`bayes_alliance.inference.cache.compile_pymc_model` builds it for nutpie), checked
    against PyMC's own for :data:`_CHECK_SEEDS`; None and the reason when it does not match."""
    from pymc.initial_point import make_initial_point_fn

    def point_fn(jitter: bool) -> Callable[[Any], dict[str, np.ndarray]]:
        return make_initial_point_fn(
            model=model,
            overrides=None,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs) if jitter else set(),
            return_transformed=True,
        )

    n_free = len(model.free_RVs)
    free = names[:n_free]
    base = point_fn(False)(None)
    jittered = point_fn(True)
    base_arrays = tuple(np.asarray(base[n], dtype="float64") for n in free)
    seed = _CHECK_SEEDS[0]
    target = jittered(seed)
    n_gen = n_free  # one generator per jittered variable
    children = np.random.SeedSequence(seed).spawn(n_gen)
    generator: list[int] = []
    for name, b in zip(free, base_arrays, strict=True):
        hits = [
            j
            for j in range(n_gen)
            if np.array_equal(
                b + np.random.Generator(np.random.PCG64(children[j])).uniform(-1, 1, b.shape),
                np.asarray(target[name], dtype="float64"),
            )
        ]
        if len(hits) != 1:
            return None, f"no unique jitter generator for {name!r}"
        generator.append(hits[0])
    point = InitialPoint(base_arrays, tuple(generator), n_gen)
    for seed in _CHECK_SEEDS:
        want = jittered(seed)
        got = point.values(seed)
        if not all(
            np.array_equal(g, np.asarray(want[n], dtype="float64"))
            for n, g in zip(free, got, strict=True)
        ):
            return None, f"initial point differs from PyMC's at seed {seed}"
    return point, None


# --------------------------------------------------------------------------------------------
# Writing and reading warm entries


def record(pre: str, model: Any, compiled: Any, info: cache.CacheInfo, idata: Any) -> str | None:
    """Write the warm entry of a fit that took the full path (``model`` built, ``compiled``
    through the cache with ``info``, ``idata`` patched by PyMC's ``patch_nutpie_idata``).
    Returns why no entry was written, or None."""
    folder = cache.cache_dir()
    if folder is None or info.path is None:
        return "cache off or graph entry not stored"
    names = list(compiled.shape_info[0])
    point, reason = _initial_point(model, names)
    if point is None:
        return reason
    shared = [
        (var.name, key, compiled.shared_data[key]) for var, key in compiled.shared_var_keys.items()
    ]
    entry = {
        "format": FORMAT,
        "key": pre,
        "graph_key": info.key,
        "created": time.time(),
        "shared": shared,
        "dims": compiled.dims,
        "coords": compiled._coords,
        "initial_point": point,
        "groups": {g: idata[g].to_dataset() for g in ("constant_data", "observed_data")},
    }
    try:
        cache.write_entry(_path(folder, pre), entry)
    except OSError as exc:
        return f"not stored: {exc}"
    return None


@dataclass
class _Shared:
    """What nutpie reads of a data container: its name and rank."""

    name: str
    ndim: int

    def __hash__(self) -> int:
        return id(self)


@dataclass
class Warm:
    """A nutpie model rebuilt from a warm entry (these data bound), and what PyMC would add to
    the sampled DataTree: the ``constant_data`` / ``observed_data`` groups."""

    compiled: Any
    groups: dict[str, Any]
    key: str
    seconds: float


def load(pre: str) -> Warm | None:
    """The warm entry of ``pre`` with its kernels loaded, or None (no cache, no entry, or an
    entry that cannot be used: it is removed, and the fit takes the full path)."""
    t0 = time.perf_counter()
    folder = cache.cache_dir()
    if folder is None:
        return None
    path = _path(folder, pre)
    if not path.is_file():
        return None
    try:
        entry = cache.read_entry(path, pre, FORMAT)
        graph = cache.read_entry(cache._entry_path(folder, entry["graph_key"]), entry["graph_key"])
        compiled = _rebuild(entry, graph, cache.load_kernels(graph))
    except Exception:  # an unusable entry: the full path rebuilds it
        # a folder we may read but not write (shared, read-only): leave the entry there
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    return Warm(compiled, entry["groups"], pre, time.perf_counter() - t0)


def _rebuild(entry: dict[str, Any], graph: dict[str, Any], kernels: Any) -> Any:
    """nutpie's ``CompiledPyMCModel`` from a warm entry and its graph entry's kernels."""
    from nutpie import compile_pymc as ncp

    names, _, shapes = graph["shape_info"]
    shared_var_keys: dict[Any, str] = {}
    shared_data: dict[str, np.ndarray] = {}
    want = {(name, key) for name, key, *_ in graph["shared"]}
    if want != {(name, key) for name, key, _ in entry["shared"]}:
        raise CacheEntryError("the warm entry's data containers are not the graph entry's")
    for name, key, value in entry["shared"]:
        value = np.array(value, order="C", copy=True)
        value.flags.writeable = False
        shared_var_keys[_Shared(name, value.ndim)] = key
        shared_data[key] = value
    return ncp.CompiledPyMCModel(
        _n_dim=graph["n_dim"],
        dims=entry["dims"],
        _coords=entry["coords"],
        _shapes={name: tuple(shape) for name, shape in zip(names, shapes, strict=True)},
        compiled_logp_func=kernels.logp,
        compiled_expand_func=kernels.expand,
        initial_point_func=entry["initial_point"],
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=ncp.make_user_data(shared_var_keys, shared_data),
        n_expanded=graph["n_expanded"],
        shape_info=graph["shape_info"],
        logp_func=None,
        expand_func=None,
        reparameterized_names=graph["reparameterized_names"],
    )


def patch(idata: Any, warm: Warm, sampling_time: float) -> None:
    """What ``pymc.backends.arviz.patch_nutpie_idata`` adds to nutpie's DataTree, from the warm
    entry: the ``constant_data`` and ``observed_data`` groups (attributes made now) and the
    posterior's ``sampling_time`` / ``tuning_steps`` attributes."""
    import nutpie
    import xarray as xr
    from arviz_base import make_attrs

    # PyMC by name (not imported): make_attrs reads the version from the installed metadata.
    pymc_named: Any = SimpleNamespace(__name__="pymc")
    for group, ds in warm.groups.items():
        ds = ds.copy()
        ds.attrs = make_attrs(inference_library=pymc_named)
        idata[group] = xr.DataTree(ds)
    settings = json.loads(idata.sample_stats.attrs["inference_library_settings"])
    attrs = make_attrs(
        {"sampling_time": sampling_time, "tuning_steps": settings["settings"]["num_tune"]},
        inference_library=nutpie,
    )
    for k, v in attrs.items():
        idata.posterior.attrs[k] = v


__all__ = [
    "FORMAT",
    "InitialPoint",
    "Warm",
    "data_fingerprint",
    "load",
    "patch",
    "pre_key",
    "record",
    "source_hash",
]
