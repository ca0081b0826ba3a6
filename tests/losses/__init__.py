"""Tests of iaseg.losses (one test module per module of the package)."""
