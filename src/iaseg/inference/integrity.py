"""An exported file's integrity: the SHA-256 of its weights (recorded at export under
`iaseg.metadata.WEIGHTS_KEY`, checked on loading) and the class count its metadata states
against the graph's outputs."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from iaseg.metadata import WEIGHTS_KEY, ModelMetadata


def weights_digest(arrays: Iterable[tuple[str, Any]]) -> str:
    """SHA-256 of a model's weights: (name, numpy array) pairs in graph order, each array's
    dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, a in arrays:
        h.update(f"{name}|{a.dtype.str}|{tuple(a.shape)}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def expects_checksum(metadata_json: str | None) -> bool:
    """Whether the iaseg metadata (JSON text) of a file says it was written by a version that
    records the weights' checksum: format_version >= 2, or a version-1 file with the
    "accuracy_check" entry, which came after the checksum."""
    try:
        d = json.loads(metadata_json) if metadata_json else {}
    except ValueError:
        return False
    if not isinstance(d, dict):
        return False
    version = d.get("format_version")
    return (isinstance(version, int) and version >= 2) or "accuracy_check" in d


def check_weights(source: str, recorded: str | None, actual: str, required: bool = False) -> None:
    """ValueError naming `source` when its weights do not have the SHA-256 recorded at export,
    or when `required` (its metadata says its version records one: `expects_checksum`) and
    none is recorded. Files exported before iaseg recorded one are not checked."""
    if required and not recorded:
        raise ValueError(f"{source}: its checksum entry {WEIGHTS_KEY} is missing, though its metadata says it was "
                         "written by an iaseg that records one (the file was altered: export it again)")
    if recorded and recorded != actual:
        raise ValueError(f"{source}: its weights do not match the checksum recorded at export (the file is "
                         "damaged: export it again)")


def check_output_classes(source: str, meta: ModelMetadata, channels: Any) -> None:
    """ValueError naming `source` when the graph's output channels (an int when the graph states
    them) disagree with the class count of its metadata."""
    n = meta.description.num_classes
    if isinstance(channels, int) and channels > 0 and channels != n:
        raise ValueError(f"{source}: its iaseg metadata lists {n} classes but the model outputs {channels} "
                         "channels (the metadata does not belong to this model: export it again)")
