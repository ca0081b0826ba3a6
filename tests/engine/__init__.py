"""Tests of iaseg.engine (one test module per module of the package)."""
