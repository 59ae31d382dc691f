"""A crawler process starts without loading the schema (gongkai.schema loads on first use), and every caller still
gets the schema when it first reads it. Each check runs in a fresh interpreter: what an import loads is the point."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from fresh_interpreter import fresh


def test_a_crawler_process_imports_without_loading_the_schema() -> None:
    # what a spawned crawler process imports before its first request: its entry module, and the fetcher's factory
    # the flows hand it (Politeness.fetcher), unpickled from its plan
    from gongkai.flows.crawl import Politeness

    factory = pickle.dumps(Politeness().fetcher).hex()
    seen = fresh(f"""
        import json, pickle, sys
        import gongkai.crawler.processes
        pickle.loads(bytes.fromhex("{factory}"))
        import gongkai.schema as schema
        print(json.dumps({{"loaded": vars(schema).get("_SCHEMA") is not None,
                          "imported": sorted(m for m in ("gongkai.schema.loading", "gongkai.schema.models",
                                                         "gongkai.settings", "pydantic_settings", "gongkai.flows.crawl",
                                                         "gongkai.flows.pipeline", "pydantic") if m in sys.modules)}}))
    """)
    assert seen == {"loaded": False, "imported": []}


CALLERS = {
    "title classifier": "from gongkai.extractors.report_meta import classify_title; "
                        "assert classify_title('上海市2023年政府信息公开工作年度报告').is_report",
    "from-import": "from gongkai.schema import TABLES; assert 'requests' in TABLES",
    "attribute": "import gongkai.schema as s; assert s.TITLES.report.search('2023年政府信息公开工作年度报告')",
    "template()": "from gongkai.schema import all_addresses; assert all_addresses('2021')",
    "reconcile": "from gongkai.schema.reconcile import reconcile; assert isinstance(reconcile({}, '2021'), list)",
    "extraction": "import gongkai.extractors.extract",
}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_caller_gets_the_schema_on_first_use(caller: str) -> None:
    seen = fresh(f"""
        import json
        import gongkai.schema as schema
        before = vars(schema).get("_SCHEMA") is not None  # (loaded_schema(), spelt so the old code answers too)
        {CALLERS[caller]}
        now = schema.loaded_schema()
        fresh = schema.load_schema()
        print(json.dumps({{"before": before, "after": now is not None, "same": now == fresh}}))
    """)
    assert seen == {"before": False, "after": True, "same": True}


def test_threads_reading_first_load_it_once_and_a_given_schema_is_not_reloaded() -> None:
    seen = fresh("""
        import json, threading
        import gongkai.schema as schema
        calls = []
        real = schema.load_schema
        def counted(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)
        schema.load_schema = counted
        threads = [threading.Thread(target=lambda: schema.TITLES) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        first = len(calls)
        given = real()  # as a crawler process is handed its parent's
        schema._SCHEMA = None
        schema.adopt_schema(given)
        print(json.dumps({"loads": first, "adopted": schema.current_schema() is given, "after": len(calls)}))
    """)
    assert seen == {"loads": 1, "adopted": True, "after": 1}


@pytest.mark.parametrize("parent_loaded", [True, False])
def test_the_parent_hands_its_schema_to_the_child(parent_loaded: bool) -> None:
    # the plan the parent sends (crawler.processes._serve) carries the parent's schema when it has loaded it,
    # picklable as the pipe needs; a parent without one does not load it for the child (it would hold the plan back)
    seen = fresh(f"""
        import json, pickle
        import gongkai.schema as schema
        from gongkai.crawler import processes
        sent = []
        class Conn:
            def send(self, message): sent.append(pickle.dumps(message)); raise OSError("closed")
            def poll(self, timeout): return False
        class Proc:
            exitcode = 0
            def is_alive(self): return False
            def join(self, timeout=None): pass
        if {parent_loaded}:
            schema.current_schema()
        plan = processes.ChildPlan(0, [], None, {{}}, None, None, 1, 1, 0.0)
        child = processes.Child(0, [], Proc(), Conn())
        processes._serve(child, plan, None, {{}}, None, None, None)
        kind, got = pickle.loads(sent[0])
        print(json.dumps({{"kind": kind, "schema": got.schema == schema.loaded_schema(),
                          "given": got.schema is not None}}))
    """)
    assert seen == {"kind": "plan", "schema": True, "given": parent_loaded}


def test_a_crawl_loads_its_adapters_and_the_schema_while_its_first_requests_are_out(tmp_path: Path) -> None:
    # crawler.scheduler.warm_up: loaded on the driver at the first listing page done, they held every host's turn
    # (~0.3 s at 1,000 hosts). A crawl whose only host refuses connections parses no page: whatever it loaded, the
    # warm-up did, on its own thread, and was finished when the run returned
    registry = tmp_path / "registry.toml"
    registry.write_text('[[portal]]\nid = "closed"\nagency = "示例市"\ndivision_code = "110000"\nlevel = "department"\n'
                        'cms = "trs"\nlisting = ["http://127.0.0.1:9/index.html"]\nhosts = ["127.0.0.1:9"]\n', "utf-8")
    seen = fresh(f"""
        import json, sys, threading
        import gongkai.schema as schema
        from pathlib import Path
        from gongkai.crawler.crawl import CrawlContext, Limits, Walk
        from gongkai.crawler.fetcher import Fetcher
        from gongkai.crawler.registry import all_hosts, load_registry
        from gongkai.crawler.scheduler import CrawlScheduler, HostSlots
        from gongkai.crawler.state import CrawlState
        portals = load_registry(Path({str(registry)!r}))
        before = vars(schema).get("_SCHEMA") is not None
        slots = HostSlots(1, 0.0)
        fetcher = Fetcher(all_hosts(portals), delay=0.0, concurrency=1, retries=0, backoff=0.0, gate=slots)
        ctx = CrawlContext(fetcher, CrawlState(Path({str(tmp_path / "state.json")!r})), lambda *a, **k: None)
        walk = CrawlScheduler(ctx, slots, workers=2).run(Walk(ctx, portals, Limits()))
        print(json.dumps({{"before": before, "after": schema.loaded_schema() is not None,
                          "adapter": "gongkai.crawler.adapters.trs" in sys.modules,
                          "failed": [p["status"] for p in walk.summary()["portals"].values()],
                          "warming": [t.name for t in threading.enumerate() if t.name == "gongkai-warm-up"]}}))
    """)
    assert seen == {"before": False, "after": True, "adapter": True, "failed": ["failed"], "warming": []}
