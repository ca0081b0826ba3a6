"""CamVid download against a local HTTP server on 127.0.0.1 (no internet)."""
import hashlib
import json
import socket

import pytest

from iaseg.data.download import (DownloadError, MANIFEST, download_camvid, fetch, list_file_entries, parse_checksums,
                                 shipped_checksums)

from tests.helpers.download import publish


def test_download_verify_and_skip_on_rerun(server, tmp_path):
    base, cam, handler = server
    requests = handler.requests
    sums = publish(cam, "train", ["a.png", "b.png"])
    root = tmp_path / "camvid"
    report = download_camvid(root, base_url=base, splits=["train"], checksums=sums, jobs=2)
    assert sorted(report.downloaded) == sorted(sums) and not report.skipped and not report.unverified
    for rel, digest in sums.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest
    assert not list(root.rglob("*.part"))
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["files"]["train/a.png"]["verified"] is True
    n = len(requests)
    again = download_camvid(root, base_url=base, splits=["train"], checksums=sums)
    assert sorted(again.skipped) == sorted(sums) and not again.downloaded
    assert len(requests) == n                                  # nothing fetched
    (root / "trainannot/b.png").write_bytes(b"damaged")        # a damaged file is fetched again
    third = download_camvid(root, base_url=base, splits=["train"], checksums=sums)
    assert third.downloaded == ["trainannot/b.png"]


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    base, cam, _ = server
    sums = publish(cam, "train", ["a.png", "b.png"])
    (cam / "train/b.png").write_bytes(b"corrupted on the server")
    root = tmp_path / "camvid"
    with pytest.raises(DownloadError, match=r"train/b.png: SHA-256 mismatch \(expected [0-9a-f]{12}\.\.\., got"):
        download_camvid(root, base_url=base, splits=["train"], checksums=sums, jobs=1)
    assert not (root / "train/b.png").exists()
    assert not list(root.rglob("*.part")) and not list(root.rglob("*.tmp"))
    assert "\n" not in str(DownloadError("x"))


def test_files_without_shipped_sums_are_recorded(server, tmp_path):
    base, cam, handler = server
    requests = handler.requests
    sums = publish(cam, "test", ["t1.png"])
    root = tmp_path / "camvid"
    report = download_camvid(root, base_url=base, splits=["test"], checksums={})
    assert report.unverified == sorted(sums)
    assert "could not be verified" in report.summary() and MANIFEST in report.summary()
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["files"]["test/t1.png"] == {"sha256": sums["test/t1.png"],
                                               "size": (cam / "test/t1.png").stat().st_size, "verified": False}
    n = len(requests)
    assert len(download_camvid(root, base_url=base, splits=["test"], checksums={}).skipped) == 3
    assert len(requests) == n


def test_stale_partial_file_is_replaced(server, tmp_path):
    base, cam, _ = server
    sums = publish(cam, "val", ["v.png"])
    dest = tmp_path / "out/val/v.png"
    dest.parent.mkdir(parents=True)
    (dest.parent / "v.png.part").write_bytes(b"garbage from an interrupted run")
    # http.server ignores Range and answers 200: the partial file is restarted, not appended to
    assert fetch(base + "val/v.png", dest, sums["val/v.png"]) == sums["val/v.png"]
    assert dest.read_bytes() == (cam / "val/v.png").read_bytes()


def test_resume_with_range_requests(server, tmp_path):
    base, cam, handler = server
    handler.ranges = True
    sums = publish(cam, "val", ["v.png"])
    full = (cam / "val/v.png").read_bytes()
    dest = tmp_path / "out/val/v.png"
    dest.parent.mkdir(parents=True)
    part = dest.parent / "v.png.part"
    part.write_bytes(full[:100])                                # an interrupted download
    assert fetch(base + "val/v.png", dest, sums["val/v.png"]) == sums["val/v.png"]
    assert handler.requests[-1] == ("/CamVid/val/v.png", "bytes=100-")
    assert dest.read_bytes() == full and not part.exists()
    dest.unlink()
    part.write_bytes(b"x" * 100)                                # a partial file that does not match
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        fetch(base + "val/v.png", dest, sums["val/v.png"])
    assert not part.exists() and not dest.exists()
    part.write_bytes(b"y" * (len(full) + 10))                   # stale, longer than the file: HTTP 416
    assert fetch(base + "val/v.png", dest, sums["val/v.png"]) == sums["val/v.png"]   # restarted, not 416 forever
    assert handler.requests[-2:] == [("/CamVid/val/v.png", f"bytes={len(full) + 10}-"), ("/CamVid/val/v.png", None)]
    assert dest.read_bytes() == full and not part.exists()


def test_offline_and_http_errors_are_one_line(server, tmp_path):
    base, cam, _ = server
    with socket.socket() as s:                                  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"cannot reach 127.0.0.1:\d+ .*offline\?"):
        download_camvid(tmp_path / "a", base_url=f"http://127.0.0.1:{port}/CamVid", splits=["val"], timeout=5)
    with pytest.raises(DownloadError, match=r"val.txt: HTTP 404"):
        download_camvid(tmp_path / "b", base_url=base, splits=["val"], checksums={})
    with pytest.raises(DownloadError, match="unknown CamVid split"):
        download_camvid(tmp_path / "c", base_url=base, splits=["extra"])


def test_shipped_checksums_and_list_parsing(camvid_root):
    sums = shipped_checksums()
    assert len(sums) == 2 * (367 + 101) + 2
    assert sums["train/0001TP_006690.png"].startswith("b14d7c2c8e06")
    assert not any(k.startswith("test") for k in sums)
    shared = parse_checksums((camvid_root / "SHA256SUMS").read_text())
    assert all(sums[k] == v for k, v in shared.items())
    assert sums["train.txt"] == hashlib.sha256((camvid_root / "train.txt").read_bytes()).hexdigest()
    entries = list_file_entries((camvid_root / "val.txt").read_text(), "val")
    assert len(entries) == 202 and entries[:2] == ["val/0016E5_07959.png", "valannot/0016E5_07959.png"]


# A planted link (name -> where it points, inside the download root) must not let the download
# write outside the root: refused with one line, the outside file untouched, nothing written there.
LINKS = [
    ("test/t1.png.part", "outside/victim"),     # the .part of a file being downloaded
    ("test/t1.png", "outside/victim"),          # the final file
    ("test", "outside"),                        # a folder of the layout
    ("test.txt.part", "outside/victim"),        # the list file's .part
]


@pytest.mark.parametrize("link, target", LINKS, ids=[link for link, _ in LINKS])
def test_planted_links_are_refused(server, tmp_path, link, target):
    base, cam, _ = server
    publish(cam, "test", ["t1.png"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    root = tmp_path / "camvid"
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(tmp_path / target)
    with pytest.raises(DownloadError) as info:
        download_camvid(root, base_url=base, splits=["test"], checksums={}, jobs=1)
    assert str(info.value) == (f"{root / link} is a symbolic link: iaseg does not follow links inside the "
                               "download folder (remove it and run again)")
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"precious"


@pytest.mark.parametrize("planted, message", [
    ("val/v.png.part", r"v\.png\.part cannot be opened \(Too many levels of symbolic links\)"),
    ("val", r"out/val is a symbolic link or not a folder \(Not a directory\): iaseg does not follow links"),
])
def test_a_link_swapped_in_after_the_check_is_not_followed(server, tmp_path, monkeypatch, planted, message):
    """O_NOFOLLOW, not only the check: a link that appears between the check and the open is
    refused too."""
    import iaseg.data.download as download

    base, cam, _ = server
    publish(cam, "val", ["v.png"])
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "v.png.part").write_bytes(b"precious")
    root = tmp_path / "out"
    root.mkdir()

    def check_then_plant(root, rel):
        if not (root / planted).is_symlink():
            (root / planted).parent.mkdir(parents=True, exist_ok=True)
            (root / planted).symlink_to(victim / "v.png.part" if planted.endswith(".part") else victim)

    monkeypatch.setattr(download, "refuse_links", check_then_plant)
    with pytest.raises(DownloadError, match=message):
        fetch(base + "val/v.png", root / "val/v.png", None, root=root)
    assert sorted(p.name for p in victim.iterdir()) == ["v.png.part"]
    assert (victim / "v.png.part").read_bytes() == b"precious"


def test_connection_cut_mid_file_is_not_complete_for_any_split(server, tmp_path):
    base, cam, handler = server
    handler.ranges = True
    sums = publish(cam, "test", ["t1.png", "t2.png"])          # the test split: no shipped sums
    handler.cut = {"/CamVid/testannot/t2.png"}
    root = tmp_path / "camvid"
    size = (cam / "testannot/t2.png").stat().st_size
    with pytest.raises(DownloadError, match=rf"testannot/t2.png: connection lost after {size // 2:,} of {size:,} "
                                            r"bytes; run again to resume"):
        download_camvid(root, base_url=base, splits=["test"], checksums={}, jobs=1)
    assert not (root / "testannot/t2.png").exists()
    assert (root / "testannot/t2.png.part").stat().st_size == size // 2
    assert "testannot/t2.png" not in json.loads((root / MANIFEST).read_text())["files"]
    handler.cut = set()                                         # the connection is back: resumed
    report = download_camvid(root, base_url=base, splits=["test"], checksums={}, jobs=1)
    assert report.downloaded == ["testannot/t2.png"]
    assert handler.requests[-1] == ("/CamVid/testannot/t2.png", f"bytes={size // 2}-")
    assert hashlib.sha256((root / "testannot/t2.png").read_bytes()).hexdigest() == sums["testannot/t2.png"]


@pytest.mark.parametrize("line", ["/SegNet/CamVid/test/.. /SegNet/CamVid/testannot/a.png", "a.png /x/"])
def test_list_file_names_must_be_plain_file_names(line):
    with pytest.raises(DownloadError, match=r"test.txt: bad file name"):
        list_file_entries(line + "\n", "test")


def test_entries_named_twice_are_fetched_once(server, tmp_path):
    base, cam, handler = server
    sums = publish(cam, "train", ["a.png", "b.png"])
    lines = (cam / "train.txt").read_text().splitlines()
    (cam / "train.txt").write_text("\n".join(lines + lines + lines[:1]) + "\n")   # a, b, a, b, a
    sums["train.txt"] = hashlib.sha256((cam / "train.txt").read_bytes()).hexdigest()
    report = download_camvid(tmp_path / "camvid", base_url=base, splits=["train"], checksums=sums, jobs=4)
    assert sorted(report.downloaded) == sorted(sums)
    fetched = [path for path, _ in handler.requests if path.endswith(".png")]
    assert sorted(fetched) == sorted(f"/CamVid/{rel}" for rel in sums if rel.endswith(".png"))


def test_a_root_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "camvid").write_text("not a folder")
    with pytest.raises(DownloadError, match=r"^.*/camvid is a file, not a folder: give a folder to download into$"):
        download_camvid(tmp_path / "camvid", base_url="http://127.0.0.1:9/", splits=["train"])
    assert (tmp_path / "camvid").read_text() == "not a folder"
