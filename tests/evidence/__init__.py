"""Tests of iaseg.evidence (one test module per module of the package)."""
