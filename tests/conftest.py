"""Shared fixtures. Tests mirror src/iaseg: tests/<package>/test_<module>.py; every test folder is a
package (__init__.py), so modules of the same name in sibling folders do not clash, and the
helpers in tests/helpers/ import as `tests.helpers.<name>`."""
import http.server
import os
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

# Keep the suite quick and deterministic on a 2-core machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED = Path(__file__).resolve().parents[2] / "shared"
CAMVID = Path(os.environ.get("IASEG_CAMVID", SHARED / "data" / "camvid"))
CITYSCAPES_SAMPLE = Path(os.environ.get("IASEG_CITYSCAPES_SAMPLE", SHARED / "data" / "cityscapes_sample"))


@pytest.fixture
def camvid_root() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid not found at {CAMVID} (set IASEG_CAMVID)")
    return CAMVID


@pytest.fixture
def cityscapes_sample_root() -> Path:
    if not (CITYSCAPES_SAMPLE / "leftImg8bit").is_dir():
        pytest.skip(f"Cityscapes sample not found at {CITYSCAPES_SAMPLE}")
    return CITYSCAPES_SAMPLE


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder of `iaseg train --config tiny_synthetic` (2 epochs, seconds), trained once."""
    from iaseg.cli import main

    out = tmp_path_factory.mktemp("tiny")
    assert main(["train", "--config", "tiny_synthetic", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Inference checkpoints of both networks (random weights, non-trivial BatchNorm) at SIZE."""
    from iaseg.checkpoint import save_checkpoint

    from tests.helpers.speed import MODELS, checkpoint_for, random_model

    root = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for name in MODELS:
        paths[name] = root / f"{name}.pt"
        save_checkpoint(checkpoint_for(random_model(name), name), paths[name])
    return paths


@pytest.fixture
def two_runs(tmp_path):
    """A CE-like and an IAL-like report (IAL: more correct G3 pixels), written as a run folder
    (ce_run/eval/report.json) and a report file (ial_run/report.json): (run A, file B, A, B)."""
    from iaseg.metrics import write_report

    from tests.helpers.compare import camvid_report

    a, b = camvid_report(1), camvid_report(2, g3_boost=400)
    write_report(a, tmp_path / "ce_run" / "eval")
    write_report(b, tmp_path / "ial_run")
    return tmp_path / "ce_run", tmp_path / "ial_run" / "report.json", a, b


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www over HTTP; yields (base_url of CamVid/, www folder, request log)."""
    from tests.helpers.download import Handler

    www = tmp_path / "www"
    (www / "CamVid").mkdir(parents=True)
    handler = type("H", (Handler,), {"requests": [], "ranges": False, "cut": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/CamVid/", www / "CamVid", handler
    httpd.shutdown()
    httpd.server_close()
