"""Hardware components: compute units that execute ops and memory resources that carry bytes."""

from hwsim.components.base import (
    REGISTRY,
    Component,
    ComputeUnit,
    MemoryResource,
    component_class,
    register,
)

__all__ = ["REGISTRY", "Component", "ComputeUnit", "MemoryResource", "component_class", "register"]
