"""The test suite: a package, so test folders may hold modules of the same name (see conftest.py)."""
