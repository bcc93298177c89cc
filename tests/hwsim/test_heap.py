"""The heap settings a run applies: taken by glibc on Linux, once per process."""

from __future__ import annotations

import ctypes
import sys

import pytest

from hwsim.engine import heap


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


@pytest.mark.skipif(not _glibc(), reason="the settings are glibc's")
def test_glibc_takes_the_settings_once(monkeypatch):
    calls = []
    real = heap._mallopt
    monkeypatch.setattr(heap, "_applied", None)
    monkeypatch.setattr(heap, "_mallopt", lambda param, value: calls.append((param, value)) or real(param, value))
    assert heap.keep_freed_memory() is True
    assert heap.keep_freed_memory() is True
    assert calls == [(heap._M_TOP_PAD, heap.TOP_PAD_BYTES), (heap._M_MMAP_THRESHOLD, heap.MMAP_THRESHOLD_BYTES)]


def test_a_system_without_glibc_is_left_alone(monkeypatch):
    monkeypatch.setattr(heap, "_applied", None)
    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.keep_freed_memory() is False
