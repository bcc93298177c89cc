"""Machine configuration: typed fields with units, and the machine YAML loader."""
