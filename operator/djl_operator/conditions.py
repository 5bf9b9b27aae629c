"""KEP-1623 conditions: ``lastTransitionTime`` moves only when ``status`` flips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class ConditionState:
    status: bool
    reason: str
    message: str = ""


def merge(
    existing: list[dict[str, Any]],
    desired: dict[str, ConditionState],
    *,
    now: str,
    generation: int,
) -> list[dict[str, Any]]:
    """The new conditions list; conditions not named in ``desired`` are kept as they are."""
    by_type = {c["type"]: c for c in existing}
    result: list[dict[str, Any]] = []
    for ctype, state in desired.items():
        status = "True" if state.status else "False"
        previous = by_type.get(ctype)
        flipped = previous is None or previous.get("status") != status
        result.append(
            {
                "type": ctype,
                "status": status,
                "reason": state.reason,
                "message": state.message[:32768],
                "lastTransitionTime": now if flipped else previous["lastTransitionTime"],  # type: ignore[index]
                "observedGeneration": generation,
            }
        )
    result += [c for t, c in by_type.items() if t not in desired]
    return result


def find(conditions: list[dict[str, Any]], ctype: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == ctype), None)
