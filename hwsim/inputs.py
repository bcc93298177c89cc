"""The one way hwsim opens a file it was given: regular files only, a size cap, clear decoding.

Every input (machine, sweep, regress and preset YAML, CSV traces, baselines, point lists,
run-folder files) is read through :func:`read_text` or :func:`read_bytes`, and Parquet
files are checked with :func:`check_input_file` before Arrow opens them. A directory, a
device (``/dev/zero``), a FIFO, a file past its cap, bytes that are not UTF-8 and a NUL
byte in a text file each end in one :class:`~hwsim.errors.HwsimError` line naming the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hwsim.errors import HwsimError

#: Largest YAML file (machine, sweep, regress, preset) hwsim reads, bytes.
YAML_MAX_BYTES = 4 * 2**20
#: Largest CSV trace or baseline, bytes (large traces belong in Parquet, which is streamed).
CSV_MAX_BYTES = 1 * 2**30
#: Largest JSON or small text file of a run or sweep folder, bytes.
SMALL_MAX_BYTES = 64 * 2**20


def check_input_file(path: str | os.PathLike, what: str, error: type[HwsimError] = HwsimError,
                     max_bytes: int | None = None) -> Path:
    """``path`` if it is an existing regular file no larger than ``max_bytes``; ``error``
    naming the file and ``what`` it should be otherwise."""
    path = Path(path)
    if str(path) in ("", "."):
        raise error(f"{what}: no file given")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except NotADirectoryError:
        raise error(f"{path}: no such {what} (a parent is not a folder)") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is not a regular file (a {what} must be one)")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{path}: the {what} is {info.st_size:,} bytes, more than the {max_bytes:,} "
                    "bytes hwsim reads")
    return path


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int, error: type[HwsimError] = HwsimError) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``, checked while reading
    too, so a file that grows is not read without bound)."""
    path = check_input_file(path, what, error, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: the {what} is more than the {max_bytes:,} bytes hwsim reads")
    return data


def read_text(path: str | os.PathLike, what: str, max_bytes: int = YAML_MAX_BYTES,
              error: type[HwsimError] = HwsimError, allow_empty: bool = False) -> str:
    """The UTF-8 text of ``path``; ``error`` names the file and line of undecodable bytes
    or of a NUL byte, and an empty file unless ``allow_empty``."""
    data = read_bytes(path, what, max_bytes, error)
    if not data.strip() and not allow_empty:
        raise error(f"{path}: the {what} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(f"{path}:{line}: the {what} is not UTF-8 text (byte {data[err.start]:#04x} "
                    f"at offset {err.start})") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise error(f"{path}:{line}: the {what} holds a NUL byte (is it a binary file?)")
    return text.removeprefix("\ufeff")
