"""The main job (``make run``): what WorldKV, GDN-2 and HRM-Text need from a machine."""
