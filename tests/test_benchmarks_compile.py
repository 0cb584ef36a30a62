"""benchmarks/compile_profile.py: ranking XLA's compile events by self and inclusive time."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from compile_profile import summarize_compile  # noqa: E402


def _event(name, ts, dur, tid=1):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid}


EVENTS = [
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "compiler"}},
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "codegen"}},
    _event("RunBackend", 0, 10_000),          # 10 ms, of which 3 + 4 ms nested
    _event("Autotune", 1_000, 3_000),
    _event("Autotune", 5_000, 4_000),
    _event("ptxas", 6_000, 1_000),            # nested twice: inside the second Autotune
    _event("ptxas", 20_000, 2_000, tid=2),    # another thread, after a gap
]


def test_self_time_is_inclusive_time_less_nested_events():
    summary = summarize_compile(EVENTS)
    rows = {row["name"]: row for row in summary["self"]}
    assert rows["RunBackend"]["self_ms"] == pytest.approx(3.0)
    assert rows["RunBackend"]["inclusive_ms"] == pytest.approx(10.0)
    assert rows["Autotune"]["self_ms"] == pytest.approx(6.0)
    assert rows["Autotune"]["calls"] == 2
    assert rows["ptxas"]["self_ms"] == pytest.approx(3.0)
    assert [row["name"] for row in summary["self"]] == ["Autotune", "RunBackend", "ptxas"]
    assert summary["inclusive"][0]["name"] == "RunBackend"


def test_threads_count_outermost_events_and_wall_spans_all_threads():
    summary = summarize_compile(EVENTS)
    assert summary["threads"] == [{"thread": "compiler", "busy_ms": 10.0, "events": 4},
                                  {"thread": "codegen", "busy_ms": 2.0, "events": 1}]
    assert summary["wall_ms"] == pytest.approx(22.0)
    assert summarize_compile([])["wall_ms"] == 0.0


def test_top_limits_the_rankings():
    summary = summarize_compile(EVENTS, top=1)
    assert len(summary["self"]) == len(summary["inclusive"]) == len(summary["threads"]) == 1
