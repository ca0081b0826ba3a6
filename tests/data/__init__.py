"""Tests of iaseg.data (one test module per module of the package)."""
