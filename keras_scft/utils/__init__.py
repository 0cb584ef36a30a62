"""Small helpers shared across keras_scft (paths, files fetched from package registries)."""
