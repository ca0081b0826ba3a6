"""Tests of iaseg.decision (one test module per module of the package)."""
