"""Tests of iaseg.inference (one test module per module of the package)."""
