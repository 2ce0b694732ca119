"""Event streams: an embedded durable log (local profile) or Apache Kafka (stack).

>>> from pathlib import Path
>>> from tempfile import mkdtemp
>>> from dotjoin.config import load_settings
>>> bus = open_bus(load_settings(profile="local", cwd=Path(mkdtemp()), env={}))
>>> with bus.producer() as producer:
...     producer.produce("payments", b'{"amount": 5}', key=b"user-1")
>>> with bus.consumer("docs", ["payments"]) as consumer:
...     batch = consumer.consume(100, timeout=1.0)
...     consumer.commit(batch)
>>> [(m.key, m.value) for m in batch]
[(b'user-1', b'{"amount": 5}')]
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dotjoin.config import Settings
from dotjoin.exceptions import MissingDependencyError
from dotjoin.platform.bus.base import DLQ_SUFFIX, Bus, Consumer, Message, Producer

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "DLQ_SUFFIX", "Bus", "Consumer", "Message", "Producer", "open_bus"]


def _open_embedded(settings: Settings) -> Bus:
    from dotjoin.platform.bus.embedded import EmbeddedBus

    return EmbeddedBus.from_settings(settings)


def _open_kafka(settings: Settings) -> Bus:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("confluent_kafka", "kafka") from exc
    from dotjoin.platform.bus.kafka_backend import KafkaBus

    return KafkaBus.from_settings(settings)


BACKENDS: dict[str, Callable[[Settings], Bus]] = {
    "embedded": _open_embedded,
    "kafka": _open_kafka,
}


def open_bus(settings: Settings) -> Bus:
    """The bus ``settings.bus.type`` names.

    Raises:
        MissingDependencyError: ``kafka`` without confluent-kafka installed.
        ServiceUnavailableError: ``kafka`` and no broker answers at ``settings.bus.bootstrap_servers``.
    """
    return BACKENDS[settings.bus.type](settings)
