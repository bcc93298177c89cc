"""Energy constants with provenance: published figures, their node, and explicit scaling."""
