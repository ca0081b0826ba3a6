"""Metrics of one run in the paper's format: a confusion matrix accumulated on the device, per-class
precision / recall / IoU, importance-group means (paper Table V), boundary, per-image and
offset-sweep accumulators, report files, figures and pages. What several runs say together
(comparisons, seed statistics, studies, the paper's tables) is `iaseg.evidence`.

    >>> from iaseg.metrics import ConfusionMatrix, build_report, write_report
    >>> cm = ConfusionMatrix(num_classes=11, ignore_index=11)
    >>> cm.update(logits.argmax(1), labels)          # per batch
    >>> report = build_report(cm.matrix, classes, {"G1": [...], "G2": [...], "G3": [...]})
    >>> write_report(report, "runs/x/eval")          # report.json/.md/.csv, confusion_matrix.png
"""
from .boundary import BoundaryFScore, BoundaryMetrics, TrimapIoU, boundary_map, boundary_tolerance
from .confusion import METRICS, ConfusionMatrix, class_metrics
from .figures import (importance_overlay, plot_class_bars, plot_confusion_matrix, plot_overlays,
                      plot_curves_comparison, plot_training_curves, read_metrics_jsonl)
from .report import (ReportError, UndefinedMetricWarning, build_report, find_report, load_report, report_csv,
                     report_markdown, report_to_json, summarize, write_report)
from .tables import delta_pct, display_groups, format_table2_md, format_table5_md, format_table_md, pct

__all__ = [
    "METRICS", "ConfusionMatrix", "class_metrics",
    "BoundaryFScore", "BoundaryMetrics", "TrimapIoU", "boundary_map", "boundary_tolerance",
    "ReportError", "UndefinedMetricWarning", "build_report", "summarize", "write_report", "load_report",
    "find_report", "report_to_json", "report_markdown", "report_csv",
    "format_table_md", "format_table2_md", "format_table5_md", "display_groups", "pct", "delta_pct",
    "importance_overlay", "plot_class_bars", "plot_confusion_matrix", "plot_overlays", "plot_training_curves",
    "read_metrics_jsonl", "plot_curves_comparison",
]
