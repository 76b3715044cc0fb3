"""Figures read from ``/metrics`` text."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def by_label(text: str, sample: str, label: str) -> dict[str, float]:
    """The values of the samples named ``sample``, keyed by their ``label``."""
    return {
        found.labels[label]: found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == sample and label in found.labels
    }

