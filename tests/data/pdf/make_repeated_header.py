"""Regenerate repeated-header.pdf: a Word table over two pages whose two header rows repeat on page 2.

    .venv/bin/python tests/data/pdf/make_repeated_header.py   (needs LibreOffice: soffice)

ASCII only: the build machine has no CJK font. A group label is merged down rows 30-59, across the page break.
"""

import subprocess
import tempfile
from pathlib import Path

from docx import Document
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

HERE = Path(__file__).parent

doc = Document()
doc.add_heading("Annual report on open government information 2023", level=1)
doc.add_paragraph("Statistics of requests received and handled this year.")
table = doc.add_table(rows=2 + 60, cols=4)
table.style = "Table Grid"
header = [("Item", "", "Applicants", ""), ("", "", "Persons", "Total")]
for r, texts in enumerate(header):
    row = table.rows[r]
    tr_pr = row._tr.get_or_add_trPr()
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    tr_pr.append(repeat)
    for k, text in enumerate(texts):
        row.cells[k].text = text
table.cell(0, 0).merge(table.cell(1, 1)).text = "Item"
table.cell(0, 2).merge(table.cell(0, 3)).text = "Applicants"
for i in range(60):
    row = table.rows[2 + i]
    row.cells[1].text = f"Line {i + 1}"
    row.cells[2].text = str(i)
    row.cells[3].text = str(i * 2)
    if i < 28:
        row.cells[0].text = "Early"
group = table.cell(2 + 28, 0).merge(table.cell(2 + 59, 0))
group.text = "Group label"
for i in range(28):
    table.cell(2 + i, 0).text = "Early"
doc.add_paragraph("End of report.")
with tempfile.TemporaryDirectory() as tmp:
    docx = Path(tmp) / "repeated-header.docx"
    doc.save(docx)
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(HERE), str(docx)], check=True, capture_output=True)
print(HERE / "repeated-header.pdf")
