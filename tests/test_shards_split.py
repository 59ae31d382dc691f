"""How a sharded crawl splits the registry (flows/shards.py): by host, balanced, the same every run; and what the
parent makes of its shards' summaries, a lost shard included."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gongkai.crawler.registry import Portal
from gongkai.flows.shards import ShardRun, _merge, shard_portals


def _portal(pid: str, *hosts: str) -> Portal:
    return Portal(id=pid, agency=pid, division_code="110000", level="department", cms="generic", listing=(),
                  hosts=frozenset(hosts), params={})


def _hosts(shard: list[Portal]) -> set[str]:
    return {h for p in shard for h in p.hosts}


def test_all_portals_of_a_host_go_to_one_shard_and_shards_are_balanced() -> None:
    portals = [_portal(f"p{i}", f"h{i % 7}.gov.cn") for i in range(40)]  # 7 hosts of 5 or 6 portals
    shards = shard_portals(portals, 3)
    assert sorted(p.id for s in shards for p in s) == sorted(p.id for p in portals)  # each portal once
    for a in shards:
        for b in shards:
            assert a is b or not _hosts(a) & _hosts(b)  # no host in two shards
    sizes = sorted(len(s) for s in shards)
    assert sizes[-1] - sizes[0] <= 6  # at most one host group apart


def test_a_portal_on_two_hosts_joins_their_groups() -> None:
    portals = [_portal("a", "x.gov.cn"), _portal("b", "x.gov.cn", "y.gov.cn"), _portal("c", "y.gov.cn"), _portal("d", "z.gov.cn")]
    shards = shard_portals(portals, 3)
    assert sorted(sorted(p.id for p in s) for s in shards) == [["a", "b", "c"], ["d"]]  # two groups: two shards, not three


def test_the_split_is_the_same_whatever_the_registry_order() -> None:
    portals = [_portal(f"p{i}", f"h{i % 11}.gov.cn") for i in range(60)]
    expected = [[p.id for p in s] for s in shard_portals(portals, 4)]
    for seed in range(5):
        shuffled = portals[:]
        random.Random(seed).shuffle(shuffled)
        assert [[p.id for p in s] for s in shard_portals(shuffled, 4)] == expected


def test_one_shard_is_every_portal_and_zero_is_refused() -> None:
    portals = [_portal(f"p{i}", f"h{i}.gov.cn") for i in range(5)]
    assert [len(s) for s in shard_portals(portals, 1)] == [5]
    with pytest.raises(ValueError):
        shard_portals(portals, 0)


def test_the_parent_sums_its_shards_and_fails_the_portals_of_a_lost_one() -> None:
    done = ShardRun(1, ["a"], "run-1", state="COMPLETED", worker="w1", summary={
        "portals": {"a": {"status": "ok", "error": None, "pages": 1, "listed": 2, "listing_from_cache": False}},
        "documents": [{"outcome": "new", "url": "http://x/1"}], "counts": {"new": 1, "not_modified": 3},
        "checks_failing": 2, "requests": 7, "hosts": {"x": {"requests": 7}}, "run_id": 5})
    lost = ShardRun(2, ["b", "c"], "run-2", state="RUNNING", worker="w2", lost="worker w2 stopped sending heartbeats 12 s ago")
    merged = _merge("nightly", [done, lost])
    assert merged["counts"] == {"new": 1, "not_modified": 3} and merged["requests"] == 7 and merged["checks_failing"] == 2
    assert merged["portals"]["a"]["status"] == "ok"
    assert {merged["portals"][p]["status"] for p in ("b", "c")} == {"failed"}
    assert "stopped sending heartbeats" in merged["portals"]["b"]["error"]
    assert [(s["shard"], s["worker"], s["run_id"], s["lost"] is not None) for s in merged["shards"]] == [
        (1, "w1", 5, False), (2, "w2", None, True)]


SHARD_MISTAKES = [
    (["nightly", "--shards", "0"], {}, "--shards"),
    (["nightly", "--shards", "2"], {}, "PREFECT_API_URL"),
    (["backfill", "--years", "2020", "--shards", "2"], {}, "PREFECT_API_URL"),
    (["nightly", "--shards", "2"], {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "PostgreSQL"),
    (["nightly", "--shards", "2", "--db", "postgresql://u@127.0.0.1:9/w"], {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "--db"),
    (["worker"], {}, "PREFECT_API_URL"),
    (["worker"], {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "PostgreSQL"),
]


@pytest.mark.parametrize(("argv", "env", "named"), SHARD_MISTAKES, ids=[" ".join(a) + " " + ",".join(e) for a, e, _ in SHARD_MISTAKES])
def test_a_sharded_run_without_what_it_needs_is_one_line_exit_2(argv: list[str], env: dict[str, str], named: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from gongkai.cli import main

    monkeypatch.setenv("GONGKAI_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))  # no profile naming a server
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH", "GONGKAI_DB"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        raise SystemExit(main(argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and named in err, err
    assert not (tmp_path / "data").exists()  # nothing started: no warehouse, no Prefect
