"""Compiled Numba C callbacks as self-contained object code, and back (for :mod:`.cache`).

nutpie wraps the PyTensor kernels of a model in two ``numba.cfunc`` callbacks (log density with
gradient; expansion to the stored variables). Their final LLVM module is emitted as object code
with one exported entry point, so that a later process can load it without compiling and runs
the very instructions of the process that compiled it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


class CacheEntryError(RuntimeError):
    """A cache entry could not be used (corrupt, stale, or for another model)."""


@dataclass
class Kernel:
    """A C callback loaded from object code; nutpie reads ``address``."""

    address: int
    native_name: str
    library: Any  # keeps the machine code alive
    envs: list[Any] = field(default_factory=list)  # the code holds them by address only


@dataclass
class Kernels:
    logp: Kernel
    expand: Kernel


def dump_cfunc(cfunc: Any, name: str) -> dict[str, Any]:
    """Serialise a compiled ``numba.cfunc`` as self-contained object code.

    The cfunc's final LLVM module (already optimised, with every kernel it calls linked in) is
    copied; its entry point is renamed to ``name`` and every other function made internal before
    the object code is emitted. Numba's own serialisation keeps those functions as shared weak
    symbols, which a process resolves to whichever copy it loaded first: in the process that
    compiled the model that is the separately optimised original, elsewhere the copy in the
    cached code, and the two differ in the last bits of the gradient (so do the NUTS draws).
    Internal symbols bind the code to itself: every process runs the same instructions.
    """
    import llvmlite.binding as ll
    from numba.core.environment import lookup_environment

    library = cfunc._library
    if library.has_dynamic_globals:
        raise CacheEntryError("the kernel embeds process-specific addresses (dynamic globals)")
    module = ll.parse_bitcode(library._final_module.as_bitcode())
    found = False
    for fn in module.functions:
        if fn.is_declaration:
            continue
        if fn.name == cfunc.native_name:
            fn.name = name
            found = True
        else:
            fn.linkage = "internal"
    if not found:
        raise CacheEntryError(f"entry point {cfunc.native_name} not in the kernel's module")
    module.verify()
    envs = []
    for gv in module.global_variables:
        if gv.name.startswith("_ZN08NumbaEnv"):
            env = lookup_environment(gv.name)
            # As Numba's own cache (CompileResult._find_referenced_environments): environments
            # of dynamically created functions (array expressions) are left unset; nopython
            # code reads them only to build a Python exception object.
            if env is not None and env.can_cache():
                # By module name, not as Numba pickles an Environment (which imports its
                # module on loading: PyTensor's dispatch modules, and so PyTensor).
                envs.append((env.globals["__name__"], list(env.consts), env.env_name))
    target_machine = library.codegen._tm
    return {
        "library": (name, "object", (target_machine.emit_object(module), module.as_bitcode())),
        "native_name": name,
        "envs": envs,
        "reload_init": sorted(library._reload_init, key=repr),
    }


class _RandomUids:
    """Random 128-bit function ids for Numba, as PyTensor's ``pytensor.link.numba.cache`` sets
    them (numba/numba#10486): a function compiled in this process then cannot take the mangled
    name (and Environment) of one in loaded object code."""

    def __iter__(self) -> _RandomUids:
        return self

    def __next__(self) -> int:
        return uuid.uuid4().int


def random_uids() -> None:
    """Numba's function ids made random for the rest of the process (before loading code),
    unless they already are (PyTensor's numba linker does the same on import)."""
    from numba.core.bytecode import FunctionIdentity

    if type(FunctionIdentity._unique_ids).__name__ not in ("_RandomUids", "_RandomUidIter"):
        FunctionIdentity._unique_ids = _RandomUids()  # type: ignore[assignment]


def load_cfunc(state: dict[str, Any]) -> Kernel:
    from numba.core.registry import cpu_target

    context = cpu_target.target_context
    # As Numba's cache does before loading: initialise the target (and the NRT symbols that the
    # object code links against), then run the library's reload hooks.
    context.refresh()
    for fn in state["reload_init"]:
        fn()
    codegen = context.codegen()
    library = codegen.unserialize_library(state["library"])
    address = library.get_pointer_to_function(state["native_name"])
    if not address:
        raise CacheEntryError(f"symbol {state['native_name']} missing from the cached code")
    envs = [_environment(*env) for env in state["envs"]]
    for env in envs:
        codegen.set_env(env.env_name, env)
    return Kernel(address, state["native_name"], library, envs)


def _environment(module: str, consts: list[Any], env_name: str) -> Any:
    """A Numba Environment as ``numba.core.environment._rebuild_env`` makes it, without importing
    its module: the module's globals when it is loaded, else only its name. Nopython code reads
    the constants (the objects of an exception it raises), not the globals (object mode)."""
    import sys

    from numba.core.environment import Environment, lookup_environment

    env = lookup_environment(env_name)
    if env is not None:
        return env
    loaded = sys.modules.get(module)
    env = Environment(loaded.__dict__ if loaded is not None else {"__name__": module})
    env.consts[:] = consts
    env.env_name = env_name
    Environment._memo[env_name] = env
    return env


__all__ = ["CacheEntryError", "Kernel", "Kernels", "dump_cfunc", "load_cfunc", "random_uids"]
