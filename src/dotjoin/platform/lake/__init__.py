"""The lake: zones ``raw/ → staging/ → curated/`` under one root, and Iceberg tables in a SQL catalog.

Use :func:`open_lake`; the Iceberg/PyIceberg machinery is imported only when a lake is opened.

Example::

    from dotjoin.config import load_settings
    from dotjoin.platform.lake import PartitionField, open_lake

    with open_lake(load_settings()) as lake:
        lake.create_table("raw.events", schema, partition_by=[PartitionField("ts", "day")])
        lake.append("raw.events", batch)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dotjoin.platform.lake.base import (
    ZONES,
    ExpireResult,
    Lake,
    PartitionField,
    ScanPlan,
    SnapshotInfo,
    Transform,
    Zone,
)

if TYPE_CHECKING:
    from dotjoin.config import Settings

__all__ = [
    "ZONES",
    "ExpireResult",
    "Lake",
    "PartitionField",
    "ScanPlan",
    "SnapshotInfo",
    "Transform",
    "Zone",
    "open_lake",
]


def open_lake(settings: Settings) -> Lake:
    """Open the lake of ``settings``: Iceberg with a SQLite catalog (local) or a PostgreSQL one (stack).

    Both catalogs are PyIceberg's ``SqlCatalog``, so one implementation serves both; ``settings.lake.catalog``
    only chooses the database (see :mod:`dotjoin.platform.lake.iceberg`).

    Raises:
        MissingDependencyError: the PostgreSQL driver is not installed (``pip install 'dotjoin[postgres]'``).
        ServiceUnavailableError: the PostgreSQL catalog is not reachable.
    """
    from dotjoin.platform.lake.iceberg import IcebergLake

    return IcebergLake.from_settings(settings)
