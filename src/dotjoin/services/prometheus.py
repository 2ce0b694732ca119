"""Prometheus and its Pushgateway from Debian's packages (2.42, 1.5), on 127.0.0.1, private configs.

Prometheus scrapes ``dotjoin serve``'s ``/metrics`` (the run reports as metrics), the Pushgateway (where
every run of a batch job pushes its own, ``honor_labels``: the run's labels win) and the payments
detector's endpoint when it runs, every ``services.prometheus_interval_s``; it evaluates the alerting
rules of ``services/prometheus/alerts.yml`` (failed checks, stale datasets, lag, drift), copied next to
its config on every ``up``. Data in ``<services dir>/prometheus/data``, ``prometheus_retention`` long.
Probed through the HTTP API (``/api/v1/status/buildinfo``; the Pushgateway's ``/api/v1/status``).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from dotjoin.services import process
from dotjoin.services.base import Service

REPO_ROOT = Path(__file__).resolve().parents[3]
ALERT_RULES = REPO_ROOT / "services" / "prometheus" / "alerts.yml"
APT_HINT = "apt-get install prometheus prometheus-pushgateway"


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own loopback URL
        return json.loads(response.read())


def render_config(
    *, port: int, interval_s: int, web: str, pushgateway: str, payments: str, rules: Path
) -> str:
    """``prometheus.yml``; rewritten on every ``up``."""
    return f"""# Written by `dotjoin services up prometheus`; edits are overwritten.
global:
  scrape_interval: {interval_s}s
  evaluation_interval: {interval_s}s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: dotjoin
    static_configs: [{{targets: ["{web}"]}}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{{targets: ["{pushgateway}"]}}]
  - job_name: payments_detector
    static_configs: [{{targets: ["{payments}"]}}]
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


class PushgatewayService(Service):
    name: ClassVar[str] = "pushgateway"
    start_timeout: ClassVar[float] = 20.0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.services.pushgateway_port

    def check_prerequisites(self) -> None:
        process.require_binary("prometheus-pushgateway", APT_HINT)

    def install(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            process.require_binary("prometheus-pushgateway", APT_HINT),
            f"--web.listen-address={self.address}",
            f"--persistence.file={self.home / 'metrics.db'}",  # pushed metrics survive a restart
            "--persistence.interval=1m",
        ]

    def probe(self) -> str:
        status = _get_json(f"http://{self.address}/api/v1/status")
        return str(status["data"]["build_information"]["version"])


class PrometheusService(Service):
    name: ClassVar[str] = "prometheus"
    start_timeout: ClassVar[float] = 30.0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.services.prometheus_port

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    def check_prerequisites(self) -> None:
        process.require_binary("prometheus", APT_HINT)

    def install(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        rules = self.home / "alerts.yml"
        shutil.copyfile(ALERT_RULES, rules)
        s = self.settings.services
        self.config_file.write_text(
            render_config(
                port=self.port,
                interval_s=s.prometheus_interval_s,
                web=f"{self.settings.web.host}:{self.settings.web.port}",
                pushgateway=f"127.0.0.1:{s.pushgateway_port}",
                payments=f"127.0.0.1:{s.payments_metrics_port}",
                rules=rules,
            )
        )

    def command(self) -> list[str]:
        return [
            process.require_binary("prometheus", APT_HINT),
            f"--config.file={self.config_file}",
            f"--web.listen-address={self.address}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--storage.tsdb.retention.time={self.settings.services.prometheus_retention}",
        ]

    def probe(self) -> str:
        return str(_get_json(f"http://{self.address}/api/v1/status/buildinfo")["data"]["version"])
