"""Helpers shared by the workload generators: the op-table builder, preset loading and layer templates."""
