"""What runs say together: reports compared side by side, methods compared over paired seeds
(statistics, matched operating points, hierarchical bootstrap), studies pooled over strata, and
the paper's published tables as reports. Built on the per-run reports of `iaseg.metrics`; used by
`iaseg compare` and `iaseg demo`.

    >>> from iaseg.evidence import compare_reports, reports_table
    >>> compare_reports("runs/ce/eval", "runs/ial/eval", out_dir="runs/ce_vs_ial")
    >>> from iaseg.evidence.study import build_study            # compare --group
    >>> from iaseg.evidence.study_report import write_study
"""
from .compare import compare_reports, comparison_dict, comparison_markdown, reports_table, summary_line
from .paper import paper_report, paper_table5, paper_vs_ours, paper_vs_ours_markdown

__all__ = [
    "compare_reports", "comparison_dict", "comparison_markdown", "reports_table", "summary_line",
    "paper_report", "paper_table5", "paper_vs_ours", "paper_vs_ours_markdown",
]
