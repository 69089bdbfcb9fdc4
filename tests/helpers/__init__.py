"""Test oracles and picture helpers used only by the tests (imported as ``helpers.*``; tests/ is on sys.path)."""
