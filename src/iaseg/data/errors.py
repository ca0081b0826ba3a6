"""The data package's errors. They live apart from the modules that raise them so that every
module (readers, datasets, the checker) can import them without importing each other."""
from __future__ import annotations


class DatasetError(ValueError):
    """Bad dataset input (unreadable file, missing label, bad label values, wrong layout, ...).
    The message starts with the file or folder it is about."""

    def __init__(self, message: str = "") -> None:
        # A DataLoader worker's error is re-raised in the main process as
        # DatasetError("Caught DatasetError in DataLoader worker process N.\nOriginal Traceback
        # ...\n<module>.DatasetError: <message>"): keep the one line that matters.
        if isinstance(message, str) and message.startswith("Caught DatasetError") and "\nOriginal " in message:
            last = message.rstrip().rsplit("\n", 1)[-1]
            head, sep, tail = last.partition("DatasetError: ")
            if sep:
                message = tail
        super().__init__(message)


class DescriptionError(ValueError):
    """A dataset description file is malformed; the message names the file."""
