"""Reference methods, one folder each, registered as `toolkit.methods` plug-ins in pyproject.toml."""
