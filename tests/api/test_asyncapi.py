"""The AsyncAPI document and JSON Schemas in docs/api/ are generated from the models and current."""

from __future__ import annotations

import json

import yaml

from dronectl.operations.models import Method
from dronectl.transports.mqtt import asyncapi


def test_checked_in_docs_are_current() -> None:
    assert asyncapi.stale() == [], "run: python -m dronectl.transports.mqtt.asyncapi"


def test_document_covers_the_topic_tree_and_every_method() -> None:
    files = asyncapi.render("city/v9")
    doc = yaml.safe_load(files["asyncapi.yaml"])
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {
        "city/v9/status",
        "city/v9/nests/{nest}/state",
        "city/v9/nests/{nest}/telemetry",
        "city/v9/nests/{nest}/events",
        "city/v9/events",
        "city/v9/nests/{nest}/commands/{user}",
        "city/v9/commands/{user}",
        "city/v9/incidents/{user}",
    } <= addresses
    assert set(doc["x-dronectl-methods"]) == {m.value for m in Method}
    for message in doc["components"]["messages"].values():
        assert message["payload"]["$ref"].removeprefix("./") in files
    launch = json.loads(files["schemas/args/launch.json"])
    assert launch["additionalProperties"] is False and "target" in launch["required"]


def test_stale_copy_is_detected(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    asyncapi.write(directory)
    assert asyncapi.stale(directory) == []
    (directory / "schemas" / "Reply.json").write_text("{}", encoding="utf-8")
    (directory / "schemas" / "Old.json").write_text("{}", encoding="utf-8")
    assert asyncapi.stale(directory) == ["schemas/Reply.json", "schemas/Old.json"]
