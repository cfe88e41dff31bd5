"""On-disk cache of compiled models: compilation paid once per machine, not per process.

``nutpie.compile_pymc_model`` spends its time (tens of seconds for the three-level model) in
PyTensor graph rewriting and in LLVM optimisation of the Numba C callbacks that nutpie wraps
around the PyTensor kernels. Neither is cached across processes by the libraries themselves:
PyTensor caches the Numba kernels of single Ops and graphs (under ``base_compiledir/numba``),
but not the rewritten graph, and nutpie's ``numba.cfunc`` wrappers are compiled without a cache
and re-optimise the linked kernels as one module on every call.

This module stores the finished machine code of nutpie's two C callbacks (log density with
gradient, and the expansion to the stored variables) as self-contained object code
(:func:`bayes_alliance.inference.native_code.dump_cfunc`), with the Numba Environments it refers to and
the little nutpie needs besides (parameter names and shapes, the names under which the data
containers enter the kernels). A later process with the same model structure loads it in a fraction of a second and
builds nutpie's compiled-model object around it; the data are bound afresh, so one entry serves
any data of the same layout. The initial-point function is rebuilt (small). The process that
compiles runs the serialised code too, so draws with a given seed are bit-identical whether the
kernels were compiled now, loaded from the cache, or the cache is off. (They differ in the last
bits from nutpie's own in-process kernels, and so from fits made before this cache existed.)

Key: SHA-256 of a structural fingerprint of the model graph (every Op with its properties, every
constant's bytes, every variable's type and name, the transforms), the layout (shapes of the
parameters and stored variables; PyMC's dimension lengths are symbolic), the spec, the compile options
that change code (``numba__fastmath``, ``floatX``), the Python implementation and the versions
of Python and the libraries the provenance records (one list for both:
:func:`bayes_alliance.core.versions.library_versions`: PyTensor, PyMC, nutpie, Numba,
llvmlite, NumPy, bayes_alliance and the rest), and the LLVM target (triple, CPU, features).
Editing the model code changes the graph and so the key; an entry for another machine or library
version is never looked up.

The key needs the built graph (PyMC and PyTensor imported, the model built): a fit of data and a
spec seen before first looks for a warm entry under a key computed without them
(:mod:`bayes_alliance.inference.warm`), which names this key's entry and holds what else
sampling needs, so that such a fit imports neither library. Numba Environments are stored by
module name (:func:`bayes_alliance.inference.native_code.dump_cfunc`) so that loading an entry
imports no PyTensor module (format 2).

Location: ``$BAYES_ALLIANCE_CACHE_DIR`` (``off``, ``0`` or empty disables the cache), else the
user cache folder (``~/.cache/bayes_alliance/compiled`` on Linux). Entries are written
atomically (temporary file, then rename); one that cannot be read, has the wrong checksum or
format, or describes another model is ignored, removed and rebuilt. The entries are pickles:
point the cache only at a folder that you alone write to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import platform
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayes_alliance.core.versions import library_versions
from bayes_alliance.inference.native_code import (
    CacheEntryError,
    Kernels,
    dump_cfunc,
    load_cfunc,
    random_uids,
)

ENV_VAR = "BAYES_ALLIANCE_CACHE_DIR"
FORMAT = 2  # 2: Numba Environments stored by module name (native_code.dump_cfunc)
_MAGIC = b"BACACHE1"
_DISABLED = {"", "0", "off", "false", "no", "none"}

# Entries loaded in this process, by key: loading the same object code twice would define its
# symbols twice in Numba's JIT engine.
# Kernels loaded in this process, by key: a second fit of the same structure reuses them.
LOADED: dict[str, Kernels] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is disabled (``BAYES_ALLIANCE_CACHE_DIR=off``)."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        if value.strip().lower() in _DISABLED:
            return None
        return Path(value).expanduser()
    try:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("bayes_alliance", appauthor=False))
    except ImportError:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bayes_alliance"
    return base / "compiled"


def _versions() -> dict[str, str]:
    """The library versions of the provenance, with the Python implementation."""
    return {"implementation": platform.python_implementation(), **library_versions()}


def _target() -> tuple[Any, ...]:
    from numba.core.registry import cpu_target

    return tuple(cpu_target.target_context.codegen().magic_tuple())


def _op_props(op: Any) -> str:
    props = getattr(op, "_props_dict", None)
    if props is not None:
        try:
            return repr(sorted(props().items(), key=lambda kv: kv[0]))
        except Exception:  # fall back to the Op's own text
            pass
    return str(op)


def graph_fingerprint(model: Any) -> str:
    """SHA-256 of the structure of a ``pm.Model``'s graph.

    Covers every Apply node (Op type and properties, input positions), every constant (dtype,
    shape, bytes), the type and name of every variable, shared variables by name and type (their
    values are data, bound at sampling time), the value variables, transforms and
    ``check_bounds``. Two models with equal fingerprints compile to the same kernels.
    """
    import numpy as np
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort

    outputs = [
        *model.free_RVs,
        *model.observed_RVs,
        *model.potentials,
        *model.deterministics,
    ]
    h = hashlib.sha256()
    ids: dict[Any, int] = {}

    def ref(var: Any) -> str:
        if var in ids:
            return f"#{ids[var]}"
        ids[var] = len(ids)
        kind = "v"
        extra = ""
        if isinstance(var, Constant):
            kind = "c"
            data = var.data
            if isinstance(data, np.ndarray | np.generic) and data.dtype.kind != "O":
                arr = np.ascontiguousarray(data)
                digest = hashlib.sha256(arr.tobytes()).hexdigest()
                extra = f"{arr.dtype.str}{arr.shape}{digest}"
            else:  # None, slices and other small Python constants
                extra = f"{type(data).__qualname__}:{data!r}"
        elif isinstance(var, SharedVariable):
            kind = "s"
        return f"{kind}{ids[var]}:{var.type}:{var.name}:{extra}"

    for node in toposort(outputs):
        op = node.op
        h.update(
            (
                f"{type(op).__module__}.{type(op).__qualname__}{_op_props(op)}"
                f"({','.join(ref(i) for i in node.inputs)})"
                f"->({','.join(ref(o) for o in node.outputs)})\n"
            ).encode()
        )
    for var in outputs:
        h.update(f"out {ref(var)}\n".encode())
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        h.update(
            f"value {ref(rv)} {value.name} {value.type} "
            f"{type(transform).__qualname__ if transform is not None else None} "
            f"{_op_props(transform) if transform is not None else ''}\n".encode()
        )
    h.update(f"check_bounds {model.check_bounds}\n".encode())
    return h.hexdigest()


def layout(model: Any) -> dict[str, list[int]]:
    """Shapes of the sampled, transformed and deterministic variables, as nutpie computes them.

    They fix the sizes baked into the kernels (number of parameters, of stored numbers); with
    PyMC's symbolic dimension lengths they are not visible in the graph's structure.
    """
    from nutpie.compile_pymc import _compute_shapes

    return {name: [int(d) for d in shape] for name, shape in _compute_shapes(model).items()}


def model_key(model: Any, spec: Any | None = None) -> str:
    """The cache key of a model: graph fingerprint, layout, spec, code options, versions and
    target."""
    from pytensor import config

    parts = {
        "format": FORMAT,
        "graph": graph_fingerprint(model),
        "layout": sorted(layout(model).items()),
        "spec": spec.to_dict() if spec is not None else None,
        "options": {"fastmath": bool(config.numba__fastmath), "floatX": config.floatX},
        "versions": _versions(),
        "target": [str(t) for t in _target()],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Serialising nutpie's compiled model


def _payload(compiled: Any) -> dict[str, Any]:
    """What a later process needs, besides the model, to rebuild ``compiled``."""
    shared = [
        (var.name, key, str(compiled.shared_data[key].dtype), compiled.shared_data[key].ndim)
        for var, key in compiled.shared_var_keys.items()
    ]
    if len({name for name, *_ in shared}) != len(shared):
        raise CacheEntryError("the model's data containers need unique names")
    names, slices, shapes = compiled.shape_info
    tag = uuid.uuid4().hex  # unique entry-point names: no clash with any other loaded code
    return {
        "logp": dump_cfunc(compiled.compiled_logp_func, f"bayes_alliance_logp_{tag}"),
        "expand": dump_cfunc(compiled.compiled_expand_func, f"bayes_alliance_expand_{tag}"),
        "n_dim": int(compiled.n_dim),
        "n_expanded": int(compiled.n_expanded),
        "shape_info": (list(names), list(slices), [tuple(int(d) for d in s) for s in shapes]),
        "reparameterized_names": list(compiled.reparameterized_names or []),
        "shared": shared,
    }


def _rebuild(model: Any, payload: dict[str, Any], kernels: Kernels) -> Any:
    """nutpie's ``CompiledPyMCModel`` around loaded kernels, with ``model``'s data bound."""
    import numpy as np
    from nutpie import compile_pymc as ncp
    from pymc.initial_point import make_initial_point_fn
    from pytensor.compile.sharedvalue import SharedVariable

    names, _, shapes = payload["shape_info"]
    n_free = len(model.free_RVs)  # nutpie lays out the free variables first, in this order
    # As nutpie.compile_pymc_model does for the numba backend (support points, jittered).
    point_fn = make_initial_point_fn(
        model=model,
        overrides=None,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    initial_point_fn = ncp._rv_dict_to_flat_array_wrapper(
        ncp._wrap_with_lock(point_fn), names=names[:n_free], shapes=shapes[:n_free]
    )
    shared_var_keys: dict[Any, str] = {}
    shared_data: dict[str, Any] = {}
    for name, key, dtype, ndim in payload["shared"]:
        # A dimension's length is shared too when a density's graph keeps a shape.
        var = model.named_vars.get(name, model.dim_lengths.get(name))
        if not isinstance(var, SharedVariable):
            raise CacheEntryError(f"the model has no data container {name!r}")
        value = np.array(var.get_value(), order="C", copy=True)
        if str(value.dtype) != dtype or value.ndim != ndim:
            raise CacheEntryError(f"data container {name!r} is {value.dtype}/{value.ndim}d")
        value.flags.writeable = False
        shared_var_keys[var] = key
        shared_data[key] = value
    user_data = ncp.make_user_data(shared_var_keys, shared_data)
    dims, coords = ncp._prepare_dims_and_coords(
        model, payload["shape_info"], payload["reparameterized_names"]
    )
    return ncp.CompiledPyMCModel(
        _n_dim=payload["n_dim"],
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, shape in zip(names, shapes, strict=True)},
        compiled_logp_func=kernels.logp,
        compiled_expand_func=kernels.expand,
        initial_point_func=initial_point_fn,
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=user_data,
        n_expanded=payload["n_expanded"],
        shape_info=payload["shape_info"],
        logp_func=None,
        expand_func=None,
        reparameterized_names=payload["reparameterized_names"],
    )


# --------------------------------------------------------------------------------------------
# Files


def _entry_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.pkl"


def read_entry(path: Path, key: str, fmt: int = FORMAT) -> dict[str, Any]:
    """A cache entry read and checked (magic, checksum, format ``fmt``, key); CacheEntryError
    when it is truncated, corrupted or describes another model."""
    raw = path.read_bytes()
    head = len(_MAGIC) + 32
    if len(raw) < head or raw[: len(_MAGIC)] != _MAGIC:
        raise CacheEntryError("not a bayes_alliance cache entry")
    body = raw[head:]
    if hashlib.sha256(body).digest() != raw[len(_MAGIC) : head]:
        raise CacheEntryError("checksum mismatch (truncated or corrupted entry)")
    entry = pickle.loads(body)
    if not isinstance(entry, dict) or entry.get("format") != fmt or entry.get("key") != key:
        raise CacheEntryError("entry of another format or model")
    return entry


def write_entry(path: Path, entry: dict[str, Any]) -> None:
    """Write an entry atomically (a temporary file beside it, renamed into place), with the
    magic bytes and a checksum that :func:`read_entry` checks."""
    body = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + hashlib.sha256(body).digest() + body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


def _suppress() -> contextlib.suppress:
    return contextlib.suppress(OSError)


# --------------------------------------------------------------------------------------------
# Public entry point


@dataclass
class CacheInfo:
    """How a compiled model was obtained.

    ``status``: ``"hit"`` (loaded from the cache), ``"stored"`` (compiled and written),
    ``"compiled"`` (compiled, not stored: cache disabled or unwritable); ``key``; ``path``;
    ``seconds``; ``reason`` when an entry was ignored or could not be written.
    """

    status: str
    key: str
    path: Path | None
    seconds: float
    reason: str | None = None


def _note(reason: str | None, more: str) -> str:
    return f"{reason}; {more}" if reason else more


def _entry(compiled: Any, key: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "key": key,
        "created": time.time(),
        "versions": _versions(),
        **_payload(compiled),
    }


def load_kernels(entry: dict[str, Any]) -> Kernels:
    """The two kernels of an entry, loaded once per process (by key); no PyMC or PyTensor."""
    key = entry["key"]
    with _LOCK:
        kernels = LOADED.get(key)
        if kernels is None:
            random_uids()
            kernels = Kernels(load_cfunc(entry["logp"]), load_cfunc(entry["expand"]))
            LOADED[key] = kernels
    return kernels


def _load(model: Any, entry: dict[str, Any]) -> Any:
    return _rebuild(model, entry, load_kernels(entry))


def compile_pymc_model(model: Any, spec: Any | None = None) -> tuple[Any, CacheInfo]:
    """``nutpie.compile_pymc_model(model)`` (numba backend), through the on-disk cache.

    On a hit the stored machine code is loaded and nothing is compiled but the small
    initial-point function. On a miss nutpie compiles the model, the two kernels are serialised
    (:func:`dump_cfunc`) and written, and the model returned runs the serialised code, as a
    later process will: a fit gives the same draws whether its kernels were compiled just now or
    loaded, and the same with the cache disabled (``BAYES_ALLIANCE_CACHE_DIR=off``: serialised in
    memory only).

    Returns
    -------
    compiled, info
        nutpie's ``CompiledPyMCModel`` (``with_data`` and ``nutpie.sample`` work as usual) and
        a :class:`CacheInfo`.
    """
    import nutpie

    t0 = time.perf_counter()
    folder = cache_dir()
    key = model_key(model, spec)
    path = _entry_path(folder, key) if folder is not None else None
    reason: str | None = None
    if path is not None and path.is_file():
        try:
            compiled = _load(model, read_entry(path, key))
            return compiled, CacheInfo("hit", key, path, time.perf_counter() - t0)
        except Exception as exc:  # any unusable entry is ignored and rebuilt
            reason = f"ignored entry: {type(exc).__name__}: {exc}"
            with _LOCK:
                LOADED.pop(key, None)
            with _suppress():
                path.unlink()
    fresh = nutpie.compile_pymc_model(model)
    try:
        entry = _entry(fresh, key)
    except Exception as exc:  # cannot serialise: use nutpie's own kernels
        reason = _note(reason, f"not serialisable: {type(exc).__name__}: {exc}")
        warnings.warn(f"compiled-model cache: {reason}", RuntimeWarning, stacklevel=2)
        return fresh, CacheInfo("compiled", key, None, time.perf_counter() - t0, reason)
    status = "compiled"
    if path is not None:
        try:
            write_entry(path, entry)
            status = "stored"
        except OSError as exc:  # an unwritable cache must not fail a fit
            reason = _note(reason, f"not stored: {exc}")
            warnings.warn(f"compiled-model cache: {reason}", RuntimeWarning, stacklevel=2)
    compiled = _load(model, entry)
    return compiled, CacheInfo(
        status, key, path if status == "stored" else None, time.perf_counter() - t0, reason
    )


def clear(folder: Path | None = None) -> int:
    """Remove every cache entry (and stray temporary files); returns how many files went."""
    folder = folder or cache_dir()
    if folder is None or not folder.is_dir():
        return 0
    n = 0
    for p in folder.iterdir():
        if p.is_file() and (p.suffix == ".pkl" or p.name.startswith(".")):
            with _suppress():
                p.unlink()
                n += 1
    return n


__all__ = [
    "ENV_VAR",
    "CacheEntryError",
    "CacheInfo",
    "cache_dir",
    "clear",
    "compile_pymc_model",
    "graph_fingerprint",
    "layout",
    "load_kernels",
    "model_key",
]
