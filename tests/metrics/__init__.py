"""Tests of iaseg.metrics (one test module per module of the package)."""
