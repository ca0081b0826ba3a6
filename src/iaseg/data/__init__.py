"""Datasets, dataset descriptions, loaders, augmentation and strict input checks.

    >>> from iaseg.data import build_dataset, build_loader
    >>> ds = build_dataset("camvid", "/data/camvid", "train", size=(360, 480))
    >>> loader = build_loader(ds, batch_size=8, shuffle=True, seed=0)
"""
from .augment import Augment
from .build import DATASETS, build_dataset, dataset_options, default_split
from .camvid import CamVidDataset
from .checks import CheckReport, check_dataset
from .cityscapes import CityscapesDataset
from .description import DatasetDescription, available_descriptions, load_description
from .errors import DatasetError, DescriptionError
from .folder import FolderDataset
from .loader import Loader, build_loader, collate, default_num_workers
from .street_scenes import render_scene
from .synthetic import SyntheticStreets, scene_rng

__all__ = [
    "Augment", "CamVidDataset", "CheckReport", "CityscapesDataset", "DATASETS", "DatasetDescription",
    "DatasetError", "DescriptionError", "FolderDataset", "Loader", "SyntheticStreets", "available_descriptions",
    "build_dataset", "build_loader", "check_dataset", "collate", "dataset_options", "default_num_workers",
    "default_split", "load_description", "render_scene", "scene_rng",
]
