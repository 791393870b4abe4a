"""The exercises' reference solutions (for teachers; CI grades them and they must pass)."""
