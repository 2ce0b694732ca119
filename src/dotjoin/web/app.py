"""The run-history web app behind ``dotjoin serve``.

Routes:

- ``GET /``: run history, newest first; ``?pipeline=`` filters, ``?limit=`` caps the rows.
- ``GET /runs/{run_id}``: one run: counts, the row-accounting chart (inline SVG), outputs, checks, params.
- ``GET /api/runs``, ``GET /api/runs/{run_id}``: the reports as stored, as JSON.
- ``GET /metrics``: Prometheus exposition built from the reports (:mod:`dotjoin.platform.runs.metrics`).
- ``GET /healthz``: liveness.
- ``GET /features``: the feature store's parity runs and feature drift (PSI per window, per feature).
- ``POST /score``: a transaction's fraud score (API key, rate limit: :mod:`dotjoin.web.score`).
- ``GET /quality``: every checked dataset, its pass rate per run, the failing checks with their samples.
- ``GET /datasets/{name}``: one dataset's checks, freshness, volume per run and place in the lineage.
- ``GET /lineage``, ``GET /api/lineage``: datasets and jobs of every pipeline's latest run (:mod:`.quality`).

Everything is rendered server-side from ``<state_dir>/runs/*.json`` on each request; pages need no
JavaScript and load nothing from outside the app (one local stylesheet), so they work offline.

Run it with :func:`serve`, or under uvicorn directly::

    python -m uvicorn --factory dotjoin.web.app:create_app_from_env --port 8000
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dotjoin import __version__
from dotjoin.config import Settings, load_settings
from dotjoin.exceptions import NotFoundError
from dotjoin.pipelines.features.drift import DRIFT_STATUS
from dotjoin.pipelines.payments.monitor import read_status
from dotjoin.pipelines.payments.pipeline import STATUS_PATH
from dotjoin.platform.runs.metrics import CONTENT_TYPE_LATEST, metrics_registry, render_metrics
from dotjoin.platform.runs.report import RunReport
from dotjoin.platform.runs.store import RunStore
from dotjoin.web import filters, quality
from dotjoin.web.chart import ACCOUNTED_KINDS, accounting_chart
from dotjoin.web.score import score_router
from dotjoin.web.series import drift_view, line_chart

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
JSON_PREFIXES = ("/api/", "/healthz", "/metrics", "/score")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DEFAULT_LIMIT = 200
PARITY_PIPELINES = ("features_served_parity", "features_parity")
CHART_KINDS = frozenset({"input", *ACCOUNTED_KINDS})

PipelineQuery = Annotated[str | None, Query(max_length=200, description="Only runs of this pipeline.")]
LimitQuery = Annotated[int, Query(ge=1, le=10_000, description="At most this many runs, newest first.")]


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every .html here is HTML; escaping is never optional
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters.install(env)
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)


def _find_run(store: RunStore, run_id: str) -> RunReport:
    """The run ``run_id`` (or the one run it is a unique prefix of); 404 otherwise."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise HTTPException(404, f"no run {run_id!r}: not a valid run id")
    try:
        return store.get(run_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response a route has not set them on.

    Plain ASGI, not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs each request through
    an extra task and memory stream per request, measurable on ``POST /score`` (benchmarks/score.py).
    """

    _headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self._headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings) -> FastAPI:
    """Build the web app over the run reports of ``settings.runs_dir``.

    Args:
        settings: the loaded settings; only ``runs_dir`` is read (on every request).

    Returns:
        The FastAPI application, ready for uvicorn or ``fastapi.testclient.TestClient``.
    """
    store = RunStore(settings.runs_dir)
    registry = metrics_registry(store)
    templates = _templates()
    app = FastAPI(
        title="dotjoin",
        version=__version__,
        summary="Run history, row accounting and metrics of dotjoin pipelines.",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the pages must work offline
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.store = store
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(JSON_PREFIXES):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status_code": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.get("/", include_in_schema=False)
    def index(
        request: Request, pipeline: PipelineQuery = None, limit: LimitQuery = DEFAULT_LIMIT
    ) -> Response:
        pipeline = pipeline or None  # the form's "All pipelines" sends an empty value
        every = store.list()
        matching = [r for r in every if pipeline is None or r.pipeline == pipeline]
        statuses = Counter(r.status for r in matching)
        context: dict[str, Any] = {
            "runs": matching[:limit],
            "total": len(matching),
            "any_runs": bool(every),
            "statuses": statuses,
            "pipelines": sorted({r.pipeline for r in every}),
            "pipeline": pipeline,
            "runs_dir": settings.runs_dir,
        }
        return templates.TemplateResponse(request, "index.html", context)

    @app.get("/runs/{run_id}", include_in_schema=False)
    def run_page(request: Request, run_id: str) -> Response:
        report = _find_run(store, run_id)
        if report.run_id != run_id:  # a unique prefix: send the browser to the canonical address
            return RedirectResponse(request.url_for("run_page", run_id=report.run_id), status_code=307)
        context: dict[str, Any] = {
            "run": report,
            "chart": accounting_chart(report.counts),
            "extra_counts": {k: v for k, v in report.counts.items() if k not in CHART_KINDS},
        }
        return templates.TemplateResponse(request, "run.html", context)

    @app.get("/payments", include_in_schema=False)
    def payments_page(request: Request) -> Response:
        status = read_status(settings.resolve(STATUS_PATH))
        points = status["points"] if status else []
        context: dict[str, Any] = {
            "status": status,
            "status_path": settings.resolve(STATUS_PATH),
            "charts": [
                line_chart("Throughput (events/s)", points, [("events/s", "events_per_s")]),
                line_chart(
                    "Event → alert latency (ms)",
                    points,
                    [("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")],
                ),
                line_chart("Alerts per second", points, [("alerts", "alerts")]),
                line_chart("Consumer lag (messages)", points, [("lag", "lag")]),
                line_chart(
                    "Precision and recall against the labels topic",
                    points,
                    [("precision", "precision"), ("recall", "recall")],
                ),
            ],
        }
        return templates.TemplateResponse(request, "payments.html", context)

    @app.get("/features", include_in_schema=False)
    def features_page(request: Request) -> Response:
        drift_path = settings.resolve(DRIFT_STATUS)
        drift = json.loads(drift_path.read_text()) if drift_path.is_file() else None
        context: dict[str, Any] = {
            "parity": [(name, store.list(pipeline=name, limit=1)) for name in PARITY_PIPELINES],
            "drift": drift,
            "drift_path": drift_path,
            **(drift_view(drift) if drift else {}),
        }
        return templates.TemplateResponse(request, "features.html", context)

    @app.get("/quality", include_in_schema=False)
    def quality_page(request: Request) -> Response:
        checked = quality.datasets(store.list())
        latest = [r for q in checked for r in q.latest]
        context: dict[str, Any] = {
            "datasets": checked,
            "failing": [r for q in checked for r in q.failing],
            "freshness": quality.freshness(latest),
            "slowest": sorted(
                (r for r in latest if r.check.duration_s), key=lambda r: -(r.check.duration_s or 0)
            )[:10],
            "prometheus_url": settings.observability.prometheus_url,
        }
        return templates.TemplateResponse(request, "quality.html", context)

    @app.get("/datasets/{name}", include_in_schema=False)
    def dataset_page(request: Request, name: str) -> Response:
        reports = store.list()
        found = next((q for q in quality.datasets(reports) if q.name == name), None)
        view = quality.lineage(reports, settings, [found] if found else [])
        ids = {n.id for n in view.nodes if n.href == f"/datasets/{name}"}
        if found is None and not ids:
            raise HTTPException(404, f"no dataset {name!r} in the run reports (see /quality or /lineage)")
        context: dict[str, Any] = {
            "name": name,
            "dataset": found,
            "volume": quality.volume_chart(reports, name),
            "freshness": quality.freshness(found.latest) if found else [],
            "references": sorted(ids),
        }
        return templates.TemplateResponse(request, "dataset.html", context)

    @app.get("/lineage", include_in_schema=False)
    def lineage_page(request: Request) -> Response:
        reports = store.list()
        context = {"view": quality.lineage(reports, settings, quality.datasets(reports))}
        return templates.TemplateResponse(request, "lineage.html", context)

    @app.get("/api/lineage", tags=["lineage"])
    def api_lineage() -> dict[str, Any]:
        """The lineage graph of every pipeline's latest run: datasets and jobs, and who reads and writes
        what (the OpenLineage events of the reports)."""
        reports = store.list()
        view = quality.lineage(reports, settings, quality.datasets(reports))
        nodes = [{"id": n.id, "kind": n.kind, "label": n.label, "status": n.status} for n in view.nodes]
        return {"nodes": nodes, "edges": view.graph_edges}

    @app.get("/api/runs", response_model=list[RunReport], tags=["runs"])
    def api_runs(pipeline: PipelineQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> list[RunReport]:
        """Run reports, newest first."""
        return store.list(pipeline=pipeline or None, limit=limit)

    @app.get("/api/runs/{run_id}", response_model=RunReport, tags=["runs"])
    def api_run(run_id: str) -> RunReport:
        """One run report (``run_id`` may be a unique prefix)."""
        return _find_run(store, run_id)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus text exposition of the run reports."""
        return Response(render_metrics(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)  # for load balancers
    app.include_router(score_router(settings, registry))

    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the environment and the working directory."""
    return create_app(load_settings())


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve the web app with uvicorn until interrupted (``dotjoin serve``).

    Logging is left to the caller (the CLI configures it); uvicorn reports the address it listens on.

    Args:
        settings: the loaded settings; the app reads ``settings.runs_dir``.
        host: interface to bind; default ``settings.web.host`` (``127.0.0.1``: loopback only).
        port: TCP port; default ``settings.web.port`` (8000).
    """
    import uvicorn

    host = settings.web.host if host is None else host
    port = settings.web.port if port is None else port
    logger.info("serving the run history of %s at http://%s:%d/", settings.runs_dir, host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, server_header=False)
