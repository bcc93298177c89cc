"""Argument checks for the closed-form FLOP and byte counts (pure Python, cheap to import)."""

from __future__ import annotations


def check_counts(minimum: int = 0, *, floors: dict[str, int] | None = None, **dims: int) -> None:
    """Raise unless every ``dims`` value is an int >= ``minimum`` (or its entry in ``floors``).

    Raises:
        TypeError: a value is not an int (bools are refused too).
        ValueError: a value is below its floor; the message names the dimension.
    """
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        floor = (floors or {}).get(name, minimum)
        if value < floor:
            raise ValueError(f"{name}: must be >= {floor}, got {value}")
