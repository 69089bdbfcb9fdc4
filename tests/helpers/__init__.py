"""Test oracles, builders and stand-ins used only by the tests, imported as ``tests.helpers.*`` (tests/ is a
package; test modules import these and the fixtures of conftest.py, never each other)."""
