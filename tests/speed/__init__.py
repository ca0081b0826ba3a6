"""Tests of iaseg.speed (one test module per module of the package)."""
