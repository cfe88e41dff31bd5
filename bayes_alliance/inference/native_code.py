"""Compiled Numba C callbacks as self-contained object code, and back (for :mod:`.cache`).

nutpie wraps the PyTensor kernels of a model in two ``numba.cfunc`` callbacks (log density with
gradient; expansion to the stored variables). Their final LLVM module is emitted as object code
with one exported entry point, so that a later process can load it without compiling and runs
the very instructions of the process that compiled it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class CacheEntryError(RuntimeError):
    """A cache entry could not be used (corrupt, stale, or for another model)."""


@dataclass
class Kernel:
    """A C callback loaded from object code; nutpie reads ``address``."""

    address: int
    native_name: str
    library: Any  # keeps the machine code alive


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
                envs.append(env)
    target_machine = library.codegen._tm
    return {
        "library": (name, "object", (target_machine.emit_object(module), module.as_bitcode())),
        "native_name": name,
        "envs": envs,
        "reload_init": sorted(library._reload_init, key=repr),
    }


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
    for env in state["envs"]:
        codegen.set_env(env.env_name, env)
    return Kernel(address, state["native_name"], library)


__all__ = ["CacheEntryError", "Kernel", "Kernels", "dump_cfunc", "load_cfunc"]
