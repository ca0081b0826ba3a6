"""Helpers shared by the tests (plain functions and data; shared fixtures live in tests/conftest.py)."""
