"""A columnar batch of simulated payments (numpy arrays), before ids, defects and rendering."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

POS, ECOM, ATM = 0, 1, 2  # channel codes, in the order of contract.CHANNELS
DEVICE = "S15"  # the device_id JSON fragment: b'"dv-0123456789"' or b'null'
COUNTRY = "S2"
LEGIT = -1  # ``typ``, ``scen`` and ``look`` of a row that is none of those


@dataclass
class Rows:
    """Parallel columns, one entry per payment."""

    t: npt.NDArray[np.int64]  # event time, epoch ms
    card: npt.NDArray[np.int64]  # index into World cards
    merchant: npt.NDArray[np.int64]  # index into World merchants
    channel: npt.NDArray[np.int8]  # POS, ECOM, ATM
    amount: npt.NDArray[np.float64]  # in the card's currency, rounded to its minor unit
    device: npt.NDArray[np.bytes_]  # DEVICE
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    country: npt.NDArray[np.bytes_]  # ISO 3166-1 alpha-2
    typ: npt.NDArray[np.int8]  # index into contract.TYPOLOGIES, LEGIT for legitimate payments
    scen: npt.NDArray[np.int32]  # index into the plan's scenarios, LEGIT
    look: npt.NDArray[np.int8]  # index into fraud.LOOKALIKES for a legitimate look-alike, LEGIT

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: npt.NDArray[Any]) -> Rows:
        """The rows at ``index`` (integer positions or a boolean mask)."""
        return Rows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Rows)})

    @staticmethod
    def empty() -> Rows:
        return Rows.from_lists({f.name: [] for f in fields(Rows)})

    @staticmethod
    def from_lists(columns: dict[str, list[Any]]) -> Rows:
        kinds: dict[str, Any] = {
            "t": np.int64,
            "card": np.int64,
            "merchant": np.int64,
            "channel": np.int8,
            "amount": np.float64,
            "device": DEVICE,
            "lat": np.float64,
            "lon": np.float64,
            "country": COUNTRY,
            "typ": np.int8,
            "scen": np.int32,
            "look": np.int8,
        }
        return Rows(**{name: np.array(columns[name], dtype=kind) for name, kind in kinds.items()})
