"""Calibration: published measurements of real machines, replayed and fitted."""
