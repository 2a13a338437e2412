"""Per-request stage timings, sent back in a ``Server-Timing`` header (W3C Server Timing).

Clients, browsers' developer tools and benchmarks/breakdown.py read where a request's time went inside
the handler; the difference to what the client saw is the framework's and the network's share.
"""

from __future__ import annotations

import time


class StageTimer:
    """Consecutive named stages of one request, from construction to the last ``mark``."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.stages: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        """Close the stage ``name``: the time since the previous mark (or the start)."""
        now = time.perf_counter()
        self.stages.append((name, now - self.last))
        self.last = now

    def header(self) -> str:
        """``noise;dur=0.120, model;dur=0.700, …, handler;dur=1.100`` (milliseconds)."""
        parts = [f"{name};dur={seconds * 1e3:.3f}" for name, seconds in self.stages]
        parts.append(f"handler;dur={(self.last - self.start) * 1e3:.3f}")
        return ", ".join(parts)


def parse_header(value: str) -> dict[str, float]:
    """A ``Server-Timing`` header → {stage: milliseconds}."""
    out = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name and rest:
            out[name] = float(rest)
    return out
