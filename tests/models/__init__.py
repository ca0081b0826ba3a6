"""Tests of iaseg.models (one test module per module of the package)."""
