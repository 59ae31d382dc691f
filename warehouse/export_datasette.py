"""The Datasette metadata.json of `gongkai export --format sqlite`: `datasette gongkai.sqlite -m metadata.json`.

Titles, descriptions and column descriptions come from the same dictionary as datapackage.json. Units are
given where Datasette (Pint) knows them (PDF points, seconds, bytes); money is in 万元, which Pint does not
know, so its columns say so in their descriptions. Each row's source is its document_url (Datasette shows a
URL as a link), and the foreign keys declared in gongkai.sqlite link rows to agencies, reports and the cell
dictionary, labelled by the label_column given here.
"""

from __future__ import annotations

from typing import Any

from gongkai.warehouse.export_plan import RelationPlan

DATABASE = "gongkai"  # Datasette names a database after its file: gongkai.sqlite
# Pint units by column name, for Datasette's "units" (only units Pint knows: an unknown one breaks the page).
UNITS = {"bbox_x0": "point", "bbox_y0": "point", "bbox_x1": "point", "bbox_y1": "point", "duration_s": "s", "size": "byte"}
MONEY_NOTE = " Unit: 万元 (10,000 yuan)."


def datasette_metadata(package: dict[str, Any], plans: dict[str, RelationPlan], info: dict[str, Any]) -> dict[str, Any]:
    titles = info.get("titles", {})
    datasette = info.get("datasette", {})
    labels = datasette.get("label_columns", {})
    facets = datasette.get("facets", {})
    tables: dict[str, Any] = {}
    for resource in package["resources"]:
        name = resource["name"]
        plan = plans[name]
        columns = {}
        for field in resource["schema"]["fields"]:
            text = field["description"]
            if field.get("gongkai:kind") == "money" and "万元" not in text:
                text += MONEY_NOTE
            columns[field["name"]] = text
        table: dict[str, Any] = {"title": titles.get(name, name), "description": resource["description"], "columns": columns}
        units = {c.name: UNITS[c.name] for c in plan.columns if c.name in UNITS}
        if units:
            table["units"] = units
        if name in labels and labels[name] in columns:
            table["label_column"] = labels[name]
        wanted = [f for f in facets.get(name, []) if f in columns]
        if wanted:
            table["facets"] = wanted
        if "document_url" in columns:
            table["source"] = "Each row's document: document_url"
        tables[name] = table
    license_ = (package.get("licenses") or [{}])[0]
    return {
        "title": package["title"],
        "description": package["description"],
        "license": license_.get("name", ""),
        "license_url": license_.get("path", ""),
        "source": "; ".join(s["title"] for s in package.get("sources", [])[:2]),
        "databases": {DATABASE: {"title": package["title"], "description": package["description"], "tables": tables}},
    }
