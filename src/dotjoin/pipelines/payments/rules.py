"""Threshold rules over the features, as configuration (``rules.yaml``, or the user's own file).

A rule fires when every one of its conditions holds; its explanation names each condition with the
observed value. The shipped rules cover the typologies a threshold can catch (card testing, impossible
travel, amount spikes, a repeated charge at one merchant); the models catch the rest.

Format::

    rules:
      - name: card_testing_velocity
        description: a burst of tiny charges on one card
        when: {small_count_10m: ">= 3", amount: "<= 5"}
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml  # type: ignore[import-untyped, unused-ignore]

from dotjoin.exceptions import ConfigError
from dotjoin.pipelines.payments.features import FEATURES

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
_OPS: dict[str, Callable[[Any, float], Any]] = {  # floats, or numpy columns
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
_CONDITION = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    value: float
    index: int

    def explain(self, features: Sequence[float] | np.ndarray) -> str:
        return f"{self.feature} {features[self.index]:.4g} {self.op} {self.value:g}"

    def mask(self, matrix: np.ndarray) -> np.ndarray:
        """Where the condition holds, for every row of a feature matrix at once."""
        return np.asarray(_OPS[self.op](matrix[:, self.index], self.value))


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    conditions: tuple[Condition, ...]

    def explain(self, features: Sequence[float] | np.ndarray) -> str:
        return f"{self.name}: " + ", ".join(c.explain(features) for c in self.conditions)

    def mask(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`fires` for every row of a feature matrix at once."""
        out = self.conditions[0].mask(matrix)
        for condition in self.conditions[1:]:
            out = out & condition.mask(matrix)
        return out


def parse_rules(data: Any, origin: str) -> tuple[Rule, ...]:
    """Rules from the YAML structure above; a bad entry is one :class:`ConfigError` naming it.

    >>> parse_rules({"rules": [{"name": "r", "when": {"amount": ">= 100"}}]}, "x")[0].conditions[0].op
    '>='
    >>> parse_rules({"rules": [{"name": "r", "when": {"amout": ">= 1"}}]}, "x.yaml")
    Traceback (most recent call last):
    dotjoin.exceptions.ConfigError: x.yaml: rule r: unknown feature 'amout' (see FEATURES: amount, ...)
    """
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ConfigError(f"{origin}: want a mapping with a 'rules' list")
    rules = []
    for i, entry in enumerate(data["rules"], start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{origin}: rule {i} has no name")
        name = entry["name"]
        when = entry.get("when")
        if not isinstance(when, dict) or not when:
            raise ConfigError(f"{origin}: rule {name}: 'when' must map features to conditions like '>= 3'")
        conditions = []
        for feature, text in when.items():
            if feature not in FEATURES:
                raise ConfigError(
                    f"{origin}: rule {name}: unknown feature {feature!r} (see FEATURES: {FEATURES[0]}, ...)"
                )
            match = _CONDITION.match(str(text))
            if not match:
                raise ConfigError(
                    f"{origin}: rule {name}: condition {text!r} for {feature} is not like '>= 3'"
                )
            conditions.append(Condition(feature, match[1], float(match[2]), FEATURES.index(feature)))
        rules.append(Rule(name, str(entry.get("description", "")), tuple(conditions)))
    return tuple(rules)


def load_rules(path: Path | None = None) -> tuple[Rule, ...]:
    """The rules of ``path`` (default: the shipped ``rules.yaml``)."""
    path = path or DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the rules ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_rules(data, str(path))
