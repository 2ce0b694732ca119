"""Natively started services of the stack profile (``dotjoin services up|down|status``).

The registry below is the one list of services; to add one, write a ``Service`` subclass in its own
module and add it here. ``services.enabled`` in the settings says which ones ``up`` starts by default,
in registry order, which is dependency order (``down`` stops them in reverse).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dotjoin.config import Settings
from dotjoin.exceptions import ConfigError
from dotjoin.services.airflow import AirflowService
from dotjoin.services.base import Service, ServiceError, ServiceStatus
from dotjoin.services.connect import ConnectService
from dotjoin.services.kafka import KafkaService
from dotjoin.services.mlflow import MlflowService
from dotjoin.services.objectstore import ObjectStoreService
from dotjoin.services.postgres import PostgresService
from dotjoin.services.prometheus import PrometheusService, PushgatewayService
from dotjoin.services.redis import RedisService
from dotjoin.services.trino import TrinoService

logger = logging.getLogger(__name__)

SERVICES: dict[str, type[Service]] = {
    "postgres": PostgresService,
    "objectstore": ObjectStoreService,
    "redis": RedisService,
    "kafka": KafkaService,
    "connect": ConnectService,
    "trino": TrinoService,
    "mlflow": MlflowService,
    "airflow": AirflowService,
    "pushgateway": PushgatewayService,
    "prometheus": PrometheusService,
}

__all__ = ["SERVICES", "Service", "ServiceError", "ServiceStatus", "select_services"]


def select_services(settings: Settings, names: Sequence[str] = ()) -> list[Service]:
    """The services named (in registry order), or the enabled ones when ``names`` is empty.

    >>> from pathlib import Path
    >>> from dotjoin.config import load_settings
    >>> settings = load_settings(env={}, cwd=Path("/nonexistent"))
    >>> [s.name for s in select_services(settings, ["kafka", "postgres"])]
    ['postgres', 'kafka']
    """
    wanted = list(names) or list(settings.services.enabled)
    unknown = [name for name in wanted if name not in SERVICES]
    if unknown:
        source = "services.enabled" if not names else "the command line"
        error = ConfigError if not names else ServiceError
        raise error(f"unknown service {unknown[0]!r} (from {source}); known: {', '.join(SERVICES)}")
    return [cls(settings) for name, cls in SERVICES.items() if name in wanted]
