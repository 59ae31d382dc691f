"""The nightly deployment: `gongkai serve` builds it with a cron schedule and serves it.

Default schedule 02:00 Asia/Shanghai (the caller passes the settings' GONGKAI_NIGHTLY_CRON / GONGKAI_NIGHTLY_TZ,
or the serve flags).
Served in-process by a Prefect runner against PREFECT_API_URL (a long-lived `prefect server start`),
or against a temporary local server when none is configured.
"""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Schedule

from gongkai.flows.crawl import nightly_flow

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEPLOYMENT_NAME = "nightly"


def nightly_schedule(cron: str | None = None, timezone: str | None = None) -> Schedule:
    return Cron(cron or DEFAULT_CRON, timezone=timezone or DEFAULT_TIMEZONE)


def nightly_deployment(
    cron: str | None = None, timezone: str | None = None, parameters: dict[str, Any] | None = None, name: str = DEPLOYMENT_NAME
) -> RunnerDeployment:
    """The deployment object (not yet registered): flow gongkai-nightly on the cron schedule."""
    deployment = nightly_flow.to_deployment(
        name=name,
        schedule=nightly_schedule(cron, timezone),
        parameters={"fail_run_on_failure": True, **(parameters or {})},  # a failed portal: a Failed run in the UI
        description="Crawl every registry portal; load new or changed annual reports.",
        tags=["gongkai", "crawl"],
        # one nightly at a time: a second would die on the DuckDB file's lock (or crawl the same portals twice)
        concurrency_limit=1,
    )
    assert isinstance(deployment, RunnerDeployment)  # not a coroutine: called outside an event loop
    return deployment


def serve_nightly(cron: str | None = None, timezone: str | None = None, parameters: dict[str, Any] | None = None) -> None:
    """Register the deployment and run its scheduled flow runs until interrupted."""
    from prefect import serve

    serve(nightly_deployment(cron, timezone, parameters))
