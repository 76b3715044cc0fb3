"""The on-sale dashboard (``deploy/grafana/encore-onsale.json``) asks only for what ``/metrics`` exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.unit.test_metrics import figures

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "encore-onsale.json"
METRIC_NAME = re.compile(r"\bencore_[a-z_]+\b")
LABEL_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")


def exported() -> dict[str, set[str]]:
    """Every sample name the service renders, with the labels it carries (from a scrape with
    every kind of figure: two replicas, a block up and one down, the queue, the store)."""
    from api.metrics import render
    from prometheus_client.parser import text_string_to_metric_families

    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(render(figures())):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_a_panel_asks_for_is_exported_with_the_labels_it_uses():
    names = exported()
    asked = set()
    for title, expr in queries():
        used = METRIC_NAME.findall(expr)
        assert used, f"{title}: {expr} names no encore metric"
        labels = set(LABEL_MATCHER.findall(expr)) | {
            label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()}
        for name in used:
            assert name in names, f"{title}: {name} is not exported (exported: {sorted(names)})"
            asked.add(name)
        available = set.union(*(names[name] for name in used))
        assert labels <= available, f"{title}: labels {sorted(labels - available)} are not on {used}"
    for wanted in ("encore_seats", "encore_holds_total", "encore_queue_people", "encore_queue_admitted_total",
                   "encore_http_request_seconds_bucket", "encore_http_requests_total", "encore_problems_total"):
        assert wanted in asked, f"the dashboard has no panel for {wanted}"


def test_the_datasource_is_a_variable_every_panel_uses():
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = "${" + variable["name"] + "}"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == reference, panel["title"]
        assert all(target["datasource"]["uid"] == reference for target in panel["targets"]), panel["title"]
