"""Pre-flight check of the splits a training run reads: every image/label pair is looked at once
before the first epoch, so a truncated validation image or a bad label stops the run at the
start rather than after an epoch of training.

Images and labels are read by the data layer's one reader (`iaseg.data.io`): images checked
cheaply there (`check_image`: header, PNG chunk CRCs or a JPEG at 1/8 scale, truncation found),
labels decoded and mapped by the dataset's own `read_label`, as their values must be checked.
The result is cached in the run folder (`preflight.json`), keyed on the file list, sizes, modification
times and the dataset description, so a resumed run does not read everything again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from iaseg.data.base import check_label_size
from iaseg.data.errors import DatasetError
from iaseg.data.io import check_image
from iaseg.io import write_json

CACHE_NAME = "preflight.json"


def _stat(path: Path) -> list[Any]:
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def split_key(dataset: Any) -> str:
    """A digest of what the check depends on: every pair's paths, sizes and mtimes, and the
    description (its classes and label map decide which label values are allowed)."""
    h = hashlib.sha256()
    h.update(json.dumps(dataset.description.to_dict(), sort_keys=True, default=str).encode())
    for pair in dataset.pairs:
        h.update(json.dumps([_stat(pair.image), _stat(pair.label), pair.kind]).encode())
    return h.hexdigest()


def check_pair(dataset: Any, index: int) -> None:
    """One pair: the image's header and completeness, the label read and converted as training
    reads it (the dataset's own reader: ids through the lookup table, or colours through the
    palette), equal sizes."""
    pair = dataset.pairs[index]
    h, w = check_image(Path(pair.image))
    label = dataset.read_label(index)
    check_label_size(pair, label.shape[:2], (h, w))


def preflight(datasets: dict[str, Any], cache_dir: str | Path | None = None, progress: bool = False) -> int:
    """Check every pair of each named dataset ('training data' -> dataset, ...; None and datasets
    without files, like the synthetic one, are skipped). Raises DatasetError with the first problem (and how
    many more there are); returns the number of pairs read (0 when the cache says all is known
    good)."""
    cache = Path(cache_dir) / CACHE_NAME if cache_dir is not None else None
    known: set[str] = set()
    if cache is not None and cache.is_file():
        try:
            known = set(json.loads(cache.read_text()).get("checked", []))
        except (OSError, ValueError, AttributeError):
            known = set()
    read, checked = 0, []
    for split, dataset in datasets.items():
        if dataset is None or not getattr(dataset, "pairs", None):
            continue
        key = split_key(dataset)
        if key in known:
            checked.append(key)
            continue
        problems: list[str] = []
        indices = range(len(dataset.pairs))
        if progress:
            from tqdm.auto import tqdm
            import sys

            indices = tqdm(indices, desc=f"checking the {split}", unit="img", leave=False, file=sys.stderr)
        for i in indices:
            try:
                check_pair(dataset, i)
            except DatasetError as e:
                problems.append(str(e))
        read += len(dataset.pairs)
        if problems:
            more = f" and {len(problems) - 1} more problem(s): run `iaseg data check`" if len(problems) > 1 else ""
            raise DatasetError(f"{problems[0]} (pre-flight check of the {split}{more})")
        checked.append(key)
    if cache is not None and read:
        write_json(cache, {"checked": sorted(set(checked) | known)}, indent=1)
    return read
