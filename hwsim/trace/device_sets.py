"""The ``device`` cell of a trace row (and a machine's ``device_kinds``): a set of device indices."""

from __future__ import annotations


def parse_device_set(text: str, devices: int) -> tuple[int, ...]:
    """The devices of a ``device`` cell: ``""`` all of them, ``"3"``, ``"0-3"``, ``"0,2,4-7"``.

    Returns the sorted distinct device indices; ValueError for a malformed cell or a device
    the machine does not have.
    """
    text = text.strip()
    if text == "":
        return tuple(range(devices))
    found: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"{text!r} is not a device set (write 3, 0-3 or 0,2,4)") from None
        if first < 0 or last < first:
            raise ValueError(f"{text!r}: {part.strip()!r} is not a range of devices")
        if last >= devices:
            raise ValueError(f"{text!r} names device {last}")
        found.update(range(first, last + 1))
    return tuple(sorted(found))
