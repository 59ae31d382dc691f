"""Data files refuse typos: schema/data/*.toml and the crawler's registry, validated by models that forbid unknown
keys. Each slip is made in a copy of the shipped file; the load must fail with one line naming file, entry and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import gongkai.schema as schema
from gongkai.crawler.registry import DEFAULT_REGISTRY, RegistryError, load_registry
from gongkai.schema import SchemaError, load_schema
from gongkai.schema.datafile import shown


def _copy_data(tmp_path: Path, name: str, old: str, new: str) -> Path:
    data = tmp_path / "data"
    shutil.copytree(schema.DATA, data)
    path = data / name
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {name}"
    path.write_text(text.replace(old, new), "utf-8")
    return data


def _assert_refused(tmp_path: Path, name: str, old: str, new: str, message: str) -> None:
    """The slip in a copy of schema/data fails the load with exactly `<file>: <message>`."""
    data = _copy_data(tmp_path, name, old, new)
    with pytest.raises(SchemaError) as raised:
        load_schema(data)
    assert str(raised.value) == f"{data / name}: {message}"


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        # loaded silently before: requests.balance became new + carried_over
        ("checks.toml", 'minus = ["carried_forward"]', 'mnus = ["carried_forward"]',
         "check requests.balance: unknown key 'mnus' (did you mean 'minus'?)"),
        # dropped before: the row lost its group
        ("tables.toml", 'labels = ["予以公开"], en', 'labels = ["予以公开"], grup = "不予公开", en',
         "table requests row granted: unknown key 'grup' (did you mean 'group'?)"),
        # dropped before: the row took every column of the table
        ("tables.toml", 'labels = ["规章"], columns = ["issued"', 'labels = ["规章"], colums = ["issued"',
         "table proactive_2021 row regulations: unknown key 'colums' (did you mean 'columns'?)"),
        ("templates.toml", "last_year = 2020", "last_yaer = 2020",
         "template 2019: unknown key 'last_yaer' (did you mean 'last_year'?)"),
        ("values.toml", "count_units =", "count_unit =", "unknown key 'count_unit' (did you mean 'count_units'?)"),
        ("titles.toml", "not_report = [", "not_reports = [", "unknown key 'not_reports' (did you mean 'not_report'?)"),
        ("checks.toml", "[[rule]]\nname = \"appeals.row_total\"", "[[rules]]\nname = \"appeals.row_total\"",
         "unknown key 'rules' (did you mean 'rule'?)"),
        # a key of the other kind of check
        ("checks.toml", 'target_column = "total"\nplus = ["upheld"', 'target_row = "total"\nplus = ["upheld"',
         "check appeals.row_total: unknown key 'target_row' (did you mean 'target_column'?)"),
        ("tables.toml", 'kind = "money", en = "Fees', 'kind = "monay", en = "Fees',
         "table proactive_2021 column amount_wan_yuan: kind: Input should be 'count' or 'money' (got 'monay')"),
    ],
    ids=["mnus", "grup", "colums", "last_yaer", "count_unit", "not_reports", "rules", "target_row", "kind"],
)
def test_an_unknown_key_in_schema_data_names_file_entry_and_key(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    _assert_refused(tmp_path, name, old, new, message)


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        # loaded before: a misspelt group silently stops breaking ties between alike rows
        ("tables.toml", 'labels = ["属于国家秘密"], group = "不予公开"', 'labels = ["属于国家秘密"], group = "不与公开"',
         "table requests row denied_state_secret: group names '不与公开', not one of the table's groups (did you mean '不予公开'?)"),
        ("tables.toml", 'columns = ["issued", "repealed", "in_force"], en = "Rules',
         'columns = ["issued", "repeald", "in_force"], en = "Rules',
         "table proactive_2021 row regulations: columns names 'repeald', not a column of the table (did you mean 'repealed'?)"),
        # loaded before: reconcile would have failed on the first document
        ("checks.toml", 'target_row = "total_handled"\nplus = ["new"', 'target_row = "total_handle"\nplus = ["new"',
         "check requests.balance: target_row names 'total_handle', not a row of table requests (did you mean 'total_handled'?)"),
        ("checks.toml", 'previous_row = "carried_forward"', 'previous_row = "carried_forwards"',
         "check requests.year_over_year: previous_row names 'carried_forwards', not a row of table requests "
         "(did you mean 'carried_forward'?)"),
        ("checks.toml", '"carried_over"]', '"carried_ovr"]',
         "check requests.balance: plus names 'carried_ovr', not a row of table requests (did you mean 'carried_over'?)"),
        ("checks.toml", 'table = "appeals"', 'table = "appeal"',
         "check appeals.row_total: table names 'appeal', not the address of a table (did you mean 'appeals'?)"),
        ("templates.toml", '"proactive_2019"', '"proactive_2O19"',
         "template 2019: tables names 'proactive_2O19', not a table of tables.toml (did you mean 'proactive_2019'?)"),
    ],
    ids=["group", "row-column", "target_row", "previous_row", "plus", "check-table", "template-table"],
)
def test_a_reference_that_does_not_resolve_names_file_entry_and_key(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    _assert_refused(tmp_path, name, old, new, message)


def test_shipped_files_are_named_as_in_the_repository() -> None:
    assert shown(schema.DATA / "checks.toml") == "schema/data/checks.toml"
    assert shown(DEFAULT_REGISTRY) == "crawler/registry.toml"


# --- the registry --------------------------------------------------------------------------------------------------

ZIBO_HOSTS = 'listing = ["http://127.0.0.1:{demo}/zibo/tjj/xxgknb/list.html"]\nhosts = ["127.0.0.1:{demo}"]\n'


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # before: "missing listing", which does not say what was written instead
        ('listing = ["http://127.0.0.1:{demo}/pingtan', 'listings = ["http://127.0.0.1:{demo}/pingtan',
         "portal demo-pingtan: unknown key 'listings' (did you mean 'listing'?)"),
        # before: the portal lost its params in silence
        ("[portal.params]\n# later", "[portal.param]\n# later",
         "portal demo-pingtan: unknown key 'param' (did you mean 'params'?)"),
        # before: the portal was not crawled, in silence
        ('[[portal]]\nid = "demo-shanghai"', '[[portals]]\nid = "demo-shanghai"',
         "unknown key 'portals' (did you mean 'portal'?)"),
        # one params typo per CMS family
        ("page_size = 4", "page_sise = 4", "portal demo-pingtan: unknown trs params page_sise (did you mean 'page_size'?)"),
        ("per_page = 15", "perpage = 15", "portal demo-huaian: unknown hanweb params perpage (did you mean 'per_page'?)"),
        (ZIBO_HOSTS, ZIBO_HOSTS + '[portal.params]\nnext_txt = "下一页"\n',
         "portal demo-zibo: unknown generic params next_txt (did you mean 'next_text'?)"),
        # a value of the wrong type or shape
        ("page_size = 4", 'page_size = "4"', "portal demo-pingtan: params.page_size: Input should be a valid integer (got '4')"),
        (ZIBO_HOSTS, ZIBO_HOSTS + '[portal.params]\nitem_pattern = "(t2023"\n',
         "portal demo-zibo: params.item_pattern is not a regular expression: missing ), unterminated subpattern at position 0"),
    ],
    ids=["listings", "param", "portals", "trs-params", "hanweb-params", "generic-params", "page_size-type", "item_pattern"],
)
@pytest.mark.parametrize("demo_port", [None, 8123], ids=["demo-off", "demo-on"])
def test_a_registry_slip_names_file_portal_and_key(
    tmp_path: Path, old: str, new: str, message: str, demo_port: int | None
) -> None:
    """Demo entries are validated too when the demo is off (they are skipped only after validation)."""
    text = DEFAULT_REGISTRY.read_text("utf-8")
    assert text.count(old) == 1
    registry = tmp_path / "registry.toml"
    registry.write_text(text.replace(old, new), "utf-8")
    with pytest.raises(RegistryError) as raised:
        load_registry(registry, demo_port=demo_port)
    assert str(raised.value) == f"{registry}: {message}"


def test_params_keep_what_the_file_wrote_and_leave_defaults_to_the_adapters() -> None:
    portals = {p.id: p for p in load_registry(demo_port=8123)}
    assert portals["demo-pingtan"].params == {
        "search_api": "/pingtan/trs-search/list", "channel_id": "1813", "search_channel": "200210", "page_size": 4}
    assert portals["demo-huaian"].params == {"column_id": "5521", "unit_id": "32813", "per_page": 15}
    assert portals["demo-zibo"].params == {}
    assert portals["demo-zibo"].param("next_text", "下一页") == "下一页"


def test_alternatives_naming_a_row_the_table_lacks_are_refused(tmp_path: Path) -> None:
    _assert_refused(
        tmp_path, "tables.toml", '["other_handling"], ["other_no_correction"', '["other_handlin"], ["other_no_correction"',
        "table requests alternatives: row names 'other_handlin', not a row of the table (did you mean 'other_handling'?)",
    )  # fmt: skip
