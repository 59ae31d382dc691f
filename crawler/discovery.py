"""Which listing titles are annual reports, and on which year they report.

The year is the year reported on, read from the title (a 2024 report is published in 2025);
letters and notices posted in the same column (函, 通知 about 工作要点, 报告格式 …) are not reports.
"""

from __future__ import annotations

# One classifier for listing titles and document titles, its patterns in schema/data/titles.toml.
from extractors.report_meta import TitleVerdict, agency_from_title, classify_title, normalise_title, report_year

__all__ = ["TitleVerdict", "agency_from_title", "classify_title", "normalise_title", "report_year"]
