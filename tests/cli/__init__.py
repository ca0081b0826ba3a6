"""Tests of iaseg.cli (one test module per module of the package)."""
