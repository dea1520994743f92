"""Shared fixtures are registered as plugins here (the rootdir's conftest), never re-imported."""

pytest_plugins = ["batch_support"]
