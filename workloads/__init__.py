"""Workload models and numerical reference kernels for the hwsim accelerator simulator."""
