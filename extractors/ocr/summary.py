"""What OCR did, said in the document's warnings: where it read, how sure it was, how pages were turned."""

from __future__ import annotations

from gongkai.extractors.ocr.page import PageText

# Below this the recogniser is unsure: the value is kept and named in a warning (extract.py names the address).
LOW_CONFIDENCE = 0.9
READ_BY_OCR = "read by OCR:"  # the prefix of the summary warning (extract.py tells OCR'd reports by it)


def summarise(pages: list[PageText], unit: str, n_tables: int) -> list[str]:
    """`n_tables`: the tables the pages gave, once parts cut by page breaks were joined."""
    if not pages:
        return []
    scores = [s for p in pages for s in p.confidences]
    where = ", ".join(str(p.number) for p in pages)
    out = [f"{READ_BY_OCR} {unit}s {where}; {n_tables} table(s), {len(scores)} cells"
           + (f", lowest confidence {min(scores):.2f}" if scores else "")]
    turned = [f"{unit} {p.number} by {p.skew:+.1f}°" for p in pages if p.skew]
    if turned:
        out.append("OCR: deskewed " + ", ".join(turned))
    return out
