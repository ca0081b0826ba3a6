"""Datasets and dataset descriptions."""
from .description import DatasetDescription, DescriptionError, available_descriptions, load_description

__all__ = ["DatasetDescription", "DescriptionError", "available_descriptions", "load_description"]
