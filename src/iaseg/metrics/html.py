"""report.html: one self-contained page per evaluation, comparison, study or calibration.

The page is rendered with Jinja2 from templates shipped in `iaseg/metrics/templates/` (the CSS
and JavaScript are inlined, figures are base64 data URIs), so it opens offline and can be mailed
as one file. Its text is the command's own Markdown report (report.md, comparison.md, study.md,
the calibration page), read into blocks (headings, paragraphs, lists, the paper-layout tables)
that the template lays out: one source for the numbers, two presentations.

The operating-point explorer (evaluate) holds, for every offset of the sweep on the most
important group (`OffsetSweep`), the report `build_report` makes of that offset's confusion
matrix: the very numbers `iaseg evaluate --decision-rule` writes for a rule adding that offset.
"""
from __future__ import annotations

import base64
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from iaseg.io import json_safe

from .confusion import METRICS

TEMPLATES = Path(__file__).with_name("templates")
_INLINE = re.compile(r"(\*\*[^*]+\*\*|`[^`]+`)")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_uri(image: np.ndarray, fmt: str = "JPEG", width: int | None = None) -> str:
    """An H x W x 3 uint8 array as a data URI (JPEG for photographs, PNG for figures), scaled to
    `width` pixels wide when given."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if width and img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {"optimize": True}))
    return data_uri(buf.getvalue(), f"image/{fmt.lower()}")


def _spans(text: str) -> list[dict[str, str]]:
    """Inline Markdown as spans: **bold**, `code`, plain text."""
    out = []
    for part in _INLINE.split(text):
        if not part:
            continue
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append({"kind": "strong", "text": part[2:-2]})
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            out.append({"kind": "code", "text": part[1:-1]})
        else:
            out.append({"kind": "text", "text": part})
    return out


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def markdown_blocks(text: str, base_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The Markdown iaseg writes (headings, paragraphs, '- ' lists, pipe tables, images of files
    beside it) as blocks for the page template; an image whose file is missing is left out."""
    blocks: list[dict[str, Any]] = []
    lines = text.splitlines()
    i = 0
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append({"kind": "p", "spans": _spans(" ".join(paragraph))})
            paragraph.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
        elif stripped.startswith("#"):
            flush()
            level = len(stripped) - len(stripped.lstrip("#"))
            blocks.append({"kind": "h", "level": min(level + 1, 4), "spans": _spans(stripped[level:].strip())})
            i += 1
        elif stripped.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            align = []
            if len(rows) > 1 and all(re.fullmatch(r":?-+:?", c) for c in rows[1]):
                align = ["left" if c.startswith(":") else "right" for c in rows[1]]
                rows = rows[:1] + rows[2:]
            blocks.append({"kind": "table", "header": [_spans(c) for c in rows[0]],
                           "rows": [[_spans(c) for c in r] for r in rows[1:]], "align": align})
        elif stripped.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(_spans(lines[i].strip()[2:]))
                i += 1
            blocks.append({"kind": "list", "items": items})
        elif _IMAGE.match(stripped):
            flush()
            alt, src = _IMAGE.match(stripped).groups()
            path = Path(base_dir or ".") / src
            if path.is_file() and path.suffix.lower() == ".png":
                blocks.append({"kind": "figure", "src": data_uri(path.read_bytes()), "caption": alt or path.name})
            i += 1
        else:
            paragraph.append(stripped)
            i += 1
    flush()
    return blocks


def figure_blocks(paths: Sequence[str | Path], captions: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """PNG files as embedded figures (missing files left out)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            out.append({"kind": "figure", "src": data_uri(p.read_bytes()),
                        "caption": (captions or {}).get(p.name, p.name)})
    return out


def explorer_data(frontier: Mapping[str, Any], set_name: str, groups: Mapping[str, Sequence[str]],
                  command: str | None = None) -> dict[str, Any]:
    """What the page's operating-point explorer shows at each offset of `frontier` (the
    `OffsetSweep.to_dict` of an evaluation) on the class set `set_name`: the report of that
    offset's confusion matrix (`build_report`, as `iaseg evaluate --decision-rule` computes it):
    mean, group and per-class precision / recall / IoU (None where undefined). `command`: the
    command that writes the rule for an offset, with {offset} where the value goes."""
    from .report import UndefinedMetricWarning, build_report

    classes = list(frontier["classes"])
    confusions = np.asarray(frontier["sets"][set_name]["confusions"], dtype=np.int64)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # '-' in the page, as in the tables
        for m in confusions:
            r = build_report(m, classes, groups)
            rows.append(json_safe({"mean": {k: r["mean"][k] for k in METRICS},
                                   "groups": {g: {k: v[k] for k in METRICS} for g, v in r["groups"].items()},
                                   "classes": {c: {k: v[k] for k in METRICS} for c, v in r["per_class"].items()}}))
    deltas = [float(d) for d in frontier["deltas"]]
    zero = int(np.argmin(np.abs(np.asarray(deltas))))
    return {"set": set_name, "set_classes": list(frontier["sets"][set_name]["classes"]),
            "deltas": deltas, "labels": [_offset_text(d) for d in deltas],
            "start": zero, "groups": list(groups), "classes": classes, "points": rows, "command": command,
            "base_offsets": [float(v) for v in frontier.get("base_offsets") or []]}


def _offset_text(d: float) -> str:
    """A grid offset as typed on a command line: the float32 grid value rounded to 6 decimals
    (float32 of the text is the same offset)."""
    text = f"{round(float(d), 6):g}"
    return "0" if text in ("-0", "0") else text


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["tojson_script"] = lambda v: json.dumps(v, allow_nan=False, separators=(",", ":")).replace(
        "</", "<\\/")
    return env


def render_page(title: str, blocks: Sequence[Mapping[str, Any]], *, subtitle: str = "",
                overlays: Sequence[Mapping[str, Any]] = (), explorer: Mapping[str, Any] | None = None) -> str:
    """The page: `blocks` (markdown_blocks / figure_blocks), an overlay gallery ({'src', 'caption'})
    and the explorer (explorer_data), in one HTML document without outside resources."""
    env = _environment()
    return env.get_template("page.html.j2").render(
        title=title, subtitle=subtitle, blocks=list(blocks), overlays=list(overlays), explorer=explorer,
        css=(TEMPLATES / "page.css").read_text(), script=(TEMPLATES / "explorer.js").read_text())


def write_page(path: str | Path, title: str, blocks: Sequence[Mapping[str, Any]], **kw: Any) -> Path:
    """render_page written atomically to `path`."""
    from iaseg.io import atomic_write_bytes

    return atomic_write_bytes(path, render_page(title, blocks, **kw).encode("utf-8"))


def markdown_page(path: str | Path, markdown_file: str | Path, title: str,
                  figures: Sequence[str | Path] = (), **kw: Any) -> Path:
    """report.html of a command whose Markdown report is `markdown_file`: its blocks (with the
    images it links embedded), then the `figures` it does not link."""
    md = Path(markdown_file)
    text = md.read_text()
    blocks = markdown_blocks(text, md.parent)
    if blocks and blocks[0]["kind"] == "h" and "".join(s["text"] for s in blocks[0]["spans"]) == title:
        blocks = blocks[1:]  # the page's own title already says it
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text))
    blocks += figure_blocks([f for f in figures if Path(f).name not in linked])
    return write_page(path, title, blocks, **kw)


class OverlayPicker:
    """An `evaluate_loader` observer keeping the first `count` images as one strip each: the
    image, the ground truth and the prediction blended over it (void left as the image), for the
    page's gallery. Kept small: JPEG, `width` pixels wide."""

    def __init__(self, description: Any, count: int = 4, width: int = 960) -> None:
        self.description, self.count, self.width = description, count, width
        self.items: list[dict[str, str]] = []

    def update(self, batch: Mapping[str, Any], logits: Any, pred: Any, target: Any) -> None:
        from iaseg.data.io import resize_image
        from iaseg.visualize import overlay

        for j in range(pred.shape[0]):
            if len(self.items) >= self.count:
                return
            image = (batch["image"][j].detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
            gt, pr = target[j].cpu().numpy(), pred[j].cpu().numpy()
            image = resize_image(image.cpu().numpy(), gt.shape)
            strip = np.concatenate([image, overlay(image, gt, self.description),
                                    overlay(image, pr, self.description)], axis=1)
            self.items.append({"src": image_uri(strip, "JPEG", self.width),
                               "caption": f"{Path(str(batch['path'][j])).name}: image | ground truth | prediction"})


def evaluation_page(out_dir: str | Path, explorer: Mapping[str, Any] | None,
                    overlays: Sequence[Mapping[str, str]] = ()) -> Path:
    """out_dir/report.html of an evaluation: report.md's tables, confusion_matrix.png, the
    overlays and the explorer."""
    out = Path(out_dir)
    return markdown_page(out / "report.html", out / "report.md", "Evaluation report",
                         [out / "confusion_matrix.png"], overlays=overlays, explorer=explorer,
                         subtitle=str(out))
