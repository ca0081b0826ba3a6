"""Print the pilot's validation table (CamVid val every 5 epochs) from the committed metrics.jsonl.

    python results/camvid_recipe/pilot_table.py results/camvid_recipe/pilot/*/metrics.jsonl
"""
import json
import sys
from pathlib import Path


def rows(path: Path):
    for line in path.read_text().splitlines():
        r = json.loads(line)
        v = r.get("val")
        if v:
            yield (r["epoch"], 100 * v["mean"]["iou"], 100 * v["groups"]["G3"]["recall"],
                   100 * v["groups"]["G3"]["precision"])


def main(paths: list[str]) -> None:
    print("| run | epoch | mean IoU | G3 recall | G3 precision |")
    print("|---|---:|---:|---:|---:|")
    for p in map(Path, paths):
        for epoch, miou, rec, prec in rows(p):
            print(f"| {p.parent.name} | {epoch} | {miou:.1f} | {rec:.1f} | {prec:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
