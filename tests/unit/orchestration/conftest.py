"""Fixtures for the runner tests: settings in a temporary project, a fake sleep, a real alert receiver."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dotjoin.config import Settings, load_settings
from tests.conftest import Receiver


@dataclass
class FakeSleep:
    """Records the retry delays instead of waiting them."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def alerting_settings(tmp_path: Path, receiver: Receiver) -> Settings:
    """Local settings in a fresh project whose alerts go to ``receiver``."""
    env = {"DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL": receiver.url}
    return load_settings(profile="local", cwd=tmp_path, env=env)
