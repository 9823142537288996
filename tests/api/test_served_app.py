"""The app `serve` workers run: start-up objects frozen, the collector's thresholds raised."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service import main
from service.settings import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_served_app_freezes_start_up_objects_and_raises_the_young_threshold(
    restore_gc: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "get_settings", lambda: settings)
    gc.unfreeze()
    app = main.create_served_app()
    try:
        assert gc.get_freeze_count() > 10_000  # routes, schemas, SQL metadata
        assert gc.get_threshold() == main.GC_THRESHOLDS
        assert main.GC_THRESHOLDS[0] > 700 * 10  # far above CPython's default young threshold
    finally:
        main.dispose_engines(app)


def test_apps_built_for_tests_keep_the_collector_as_it_was(restore_gc: None, settings: Settings) -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    app = main.create_app(settings)
    main.dispose_engines(app)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


@pytest.mark.parametrize("on", [False, True])
def test_fastapis_opentelemetry_follows_the_setting(settings: Settings, on: bool) -> None:
    # FastAPI keeps its telemetry configuration on the app (private); off, it never asks for
    # the global providers on a request.
    app = main.create_app(settings.model_copy(update={"opentelemetry": on}))
    try:
        config = app._native_telemetry.config  # type: ignore[attr-defined]
        assert (config["tracing"], config["metrics"], config["logs"]) == (on, on, on)
        if not on:
            assert not app._native_telemetry.enabled()  # type: ignore[attr-defined]
    finally:
        main.dispose_engines(app)
