"""Scrape a real server's /metrics and read it with the Prometheus client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from support.processes import IceyServer, http

Key = tuple[str, tuple[tuple[str, str], ...]]  # sample name, sorted labels


@dataclass
class Scrape:
    text: str
    families: dict[str, Metric]

    @property
    def samples(self) -> dict[Key, float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in self.families.values() for s in family.samples}

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def counters(self) -> dict[Key, float]:
        names = {s.name for f in self.families.values() if f.type == "counter" for s in f.samples}
        return {key: v for key, v in self.samples.items() if key[0] in names}


def scrape(server: IceyServer, headers: dict[str, str] | None = None, base: str | None = None) -> Scrape:
    """`base`: another listener of the server (metrics.port) instead of its HTTP port."""
    r = http("GET", (base or server.base) + "/metrics", headers)
    assert r.status == 200, r.body
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    return Scrape(text, {f.name: f for f in text_string_to_metric_families(text)})
