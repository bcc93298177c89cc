"""Atomic file writes: a result file is either complete or absent, never half-written."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwsim.errors import HwsimError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(path)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    The temporary file is written through the descriptor that created it (one system call
    fewer than opening it again by name).
    """
    path = Path(path)
    try:
        fd, tmp = _open_temporary(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _open_temporary(path)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _new_temporary(path: Path) -> str:
    """Create an empty, unique temporary file beside ``path`` (see :func:`_open_temporary`)."""
    fd, tmp = _open_temporary(path)
    os.close(fd)
    return tmp


def _open_temporary(path: Path) -> tuple[int, str]:
    """Create a unique temporary file beside ``path``, open for writing, with mode ``0o666``
    less the umask, as ``open()`` would create ``path`` itself (``mkstemp`` always gives
    ``0o600``, which the rename would carry over to the result)."""
    while True:
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _check_writable_place(path: Path, what: str) -> None:
    """Refuse a ``path`` that lies inside a file or under a folder this process cannot write."""
    ancestor = _nearest_existing(path if path.is_dir() else path.parent)
    if not ancestor.is_dir():
        raise HwsimError(f"{path}: cannot create the {what}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise HwsimError(f"{path}: cannot create the {what}: {ancestor} is not writable")


def check_output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` as a folder hwsim may write into, checked before any work is done.

    Raises HwsimError for an empty path, a path that is a file, lies inside a file or under
    a folder that is not writable.
    """
    if not str(path).strip():
        raise HwsimError(f"{what}: the path is empty")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HwsimError(f"{path}: is a file, not a folder (the {what})")
    _check_writable_place(path, what)
    return path


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """``path`` as a file hwsim may (re)write, checked before any work is done.

    Raises HwsimError for an empty path, a folder, a path inside a file or under a folder
    that is not writable, or an existing file that is not writable.
    """
    if not str(path).strip():
        raise HwsimError(f"{what}: the path is empty")
    path = Path(path)
    if path.is_dir():
        raise HwsimError(f"{path}: is a folder, not a file (the {what})")
    if path.exists() and not os.access(path, os.W_OK):
        raise HwsimError(f"{path}: the {what} is not writable")
    _check_writable_place(path, what)
    return path
