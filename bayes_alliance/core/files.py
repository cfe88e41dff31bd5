"""Atomic output: results appear complete or not at all, and nothing is replaced by accident.

An output folder is built in a temporary folder beside it (``.NAME.incomplete-XXXX``) and renamed
into place when complete. While one is built, a lock file beside it (``.NAME.lock``, holding the
writer's process id) keeps a second run from writing the same folder. The lock is a kernel lock
(``flock``), released when its process ends however it ends, so a killed run never leaves a
lock that blocks the next one; that next run also removes the incomplete folder the killed one
left. :func:`check_results_file` tells a results file written by this package from a truncated
or foreign one before it is read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX; elsewhere output folders are written without a lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# The mark that a netCDF file was written by FitResult.save: its provenance attribute.
PROVENANCE_ATTR = "bayes_alliance_provenance"
# What FitResult.load reads: groups of the file and keys of the provenance.
_RESULT_GROUPS = ("posterior", "session_data")
_PROVENANCE_KEYS = ("spec", "roles", "random_seed")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class OutputExistsError(FileExistsError):
    """The output path exists and replacing it was not asked for."""


class OutputLockedError(FileExistsError):
    """Another running process is writing the same output folder."""


class ResultsFileError(ValueError):
    """A results file is missing, truncated, not netCDF, or not written by bayes_alliance."""


def incomplete_prefix(target: str | os.PathLike[str]) -> str:
    """Name prefix of the temporary folders in which ``target`` is built."""
    return f".{Path(target).name}.incomplete-"


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file that guards writes to ``target``."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def output_lock(target: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock on ``target`` (a lock file beside it with this process id) while inside.

    Raises
    ------
    OutputLockedError
        Another live process holds it; the message names its process id.
    """
    path = lock_path(target)
    if fcntl is None:  # pragma: no cover - no flock: atomic renames only
        yield
        return
    fd = _acquire(path, Path(target))
    try:
        yield
    finally:
        # Unlink while still holding the lock: a process waiting on this file finds it
        # replaced (different inode) and retries, so two holders can never coexist.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _acquire(path: Path, target: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputLockedError(
                f"{target} is being written by another run (process {holder}); wait for it to "
                "finish or choose another output"
            ) from None
        except OSError as exc:  # a file system without flock (some network mounts)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP):
                os.close(fd)
                raise
            return fd
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: retry


def _make_parent(path: Path) -> None:
    """Create the folders above ``path``; a file in the way is named (mkdir says only "File
    exists")."""
    for p in (path.parent, *path.parent.parents):
        if p.exists():
            if not p.is_dir():
                raise NotADirectoryError(f"cannot write {path}: {p} is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)


def _remove_leftovers(target: Path) -> None:
    """Remove what an interrupted or killed run on ``target`` left beside it. Called only while
    holding the lock, so no live run is writing these."""
    for p in target.parent.glob(f"{incomplete_prefix(target)}*"):
        shutil.rmtree(p, ignore_errors=True)
    if target.exists():  # the replaced copy of a run killed before it finished removing it
        for p in target.parent.glob(f".{target.name}.old-*"):
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it becomes ``target``.

    On error or interruption (any exception, ``KeyboardInterrupt`` included) the temporary
    folder is removed and ``target`` is untouched. An existing ``target`` is replaced only
    with ``force=True``, and only after the new content is complete. While inside, the lock
    on ``target`` is held (:func:`output_lock`); a killed run leaves only its
    ``.NAME.incomplete-XXXX`` folder, which the next run on ``target`` removes.

    Raises
    ------
    OutputExistsError
        ``target`` exists and ``force`` is False (checked before any work is done).
    OutputLockedError
        Another running process is writing ``target``.
    """
    target = Path(target)
    if target.exists() and not force:
        raise OutputExistsError(f"{target} exists; pass --force (force=True) to replace it")
    _make_parent(target)
    with output_lock(target):
        # Checked again under the lock: a run that held it may have just written target.
        if target.exists() and not force:
            raise OutputExistsError(f"{target} exists; pass --force (force=True) to replace it")
        _remove_leftovers(target)
        tmp = Path(tempfile.mkdtemp(prefix=incomplete_prefix(target), dir=target.parent))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; give the usual permissions
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str, *, force: bool = False) -> None:
    """Write a text file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force (force=True) to replace it")
    _make_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; on success it is renamed to ``path``."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force (force=True) to replace it")
    _make_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_results_file(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` is a complete results file written by ``FitResult.save``.

    Only the file's header, group names and provenance attribute are read, so the check is
    quick whatever the file's size.

    Returns
    -------
    Path
        ``path``, for chaining.

    Raises
    ------
    ResultsFileError
        One sentence: the file is missing, empty, truncated (an interrupted copy or write),
        not a netCDF-4 file, or a netCDF-4 file that bayes_alliance did not write.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"no results file at {path}")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(len(_HDF5_SIGNATURE))
    if size == 0:
        raise ResultsFileError(f"{path} is empty: the write or copy that made it did not finish")
    if head != _HDF5_SIGNATURE:
        raise ResultsFileError(
            f"{path} is not a results file: not netCDF-4/HDF5 (it starts with {head[:4]!r}); "
            "results are written by 'bayes-alliance fit' or FitResult.save"
        )
    try:
        fh5 = h5py.File(path, "r")
    except OSError as exc:
        if "truncated file" in str(exc):
            raise ResultsFileError(
                f"{path} is truncated ({size} bytes): the write or copy that made it did not "
                "finish; copy it again or rerun the fit"
            ) from None
        raise ResultsFileError(f"{path} is a damaged netCDF-4/HDF5 file ({exc})") from None
    with fh5:
        foreign = (
            f"{path} is a netCDF-4 file but not a result written by bayes_alliance (FitResult.save)"
        )
        if PROVENANCE_ATTR not in fh5.attrs:
            raise ResultsFileError(f"{foreign}: it has no {PROVENANCE_ATTR!r} attribute")
        missing = [g for g in _RESULT_GROUPS if g not in fh5]
        raw = fh5.attrs[PROVENANCE_ATTR]
    if missing:
        raise ResultsFileError(f"{foreign}: it lacks the group(s) {missing}")
    try:
        prov = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        prov = None
    if not isinstance(prov, dict) or any(k not in prov for k in _PROVENANCE_KEYS):
        raise ResultsFileError(f"{path} has a damaged {PROVENANCE_ATTR!r} attribute")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
