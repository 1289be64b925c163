"""What a self-test found: each check's outcome, the table a technician reads, the hub's event.

A check's ``detail`` goes to the hub; its ``local`` part is shown on the door's terminal only
(the member a tapped card belongs to). Neither ever holds a card UID: a card appears as the
first digits of its keyed hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from hafen.protocol import MAX_SELFTEST_CHECKS, MAX_SELFTEST_DETAIL, SelfTest, SelfTestCheck


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    #: Not asked for (``--no-card``), not possible (no terminal to ask at) or nothing to test.
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One check: ``name`` as the hub shows it (``strike``, ``room.coworking``, ``co2.air``)."""

    name: str
    outcome: Outcome
    detail: str = ""
    #: Shown on the door's terminal after ``detail``, never sent to the hub.
    local: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL


def passed(name: str, detail: str, local: str = "") -> CheckResult:
    return CheckResult(name, Outcome.PASS, detail, local)


def failed(name: str, detail: str, local: str = "") -> CheckResult:
    return CheckResult(name, Outcome.FAIL, detail, local)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.SKIPPED, detail)


def table(results: Sequence[CheckResult]) -> str:
    """The results as aligned plain text, one check a line, and a closing verdict.

    Plain text rather than Rich's tables: Rich comes only with typer's full install, and a
    technician's terminal, the journal and a pasted ticket all show plain columns alike.
    """
    rows = [("CHECK", "RESULT", "DETAIL")] + [
        (r.name, r.outcome.value.upper(), f"{r.detail} ({r.local})" if r.local else r.detail)
        for r in results
    ]
    name_width = max(len(row[0]) for row in rows)
    outcome_width = max(len(row[1]) for row in rows)
    lines = [
        f"{name:<{name_width}}  {outcome:<{outcome_width}}  {detail}".rstrip()
        for name, outcome, detail in rows
    ]
    return "\n".join([*lines, "", verdict(results)])


def verdict(results: Sequence[CheckResult]) -> str:
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    word = "FAILED" if counts[Outcome.FAIL] else "PASSED"
    return (
        f"self-test {word}: {counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed,"
        f" {counts[Outcome.SKIPPED]} skipped"
    )


def event(results: Sequence[CheckResult]) -> SelfTest:
    """The ``device.selftest`` event of a run: the failures first if there are more checks
    than it carries, each detail cut to what the hub keeps."""
    ordered = (
        sorted(results, key=lambda r: not r.failed)
        if len(results) > MAX_SELFTEST_CHECKS
        else results
    )
    kept = ordered[:MAX_SELFTEST_CHECKS]
    return SelfTest(
        passed=not any(r.failed for r in results),
        checks=[
            SelfTestCheck(name=r.name, outcome=r.outcome.value, detail=_cut(r.detail)) for r in kept
        ],
        left_out=len(results) - len(kept),
    )


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SELFTEST_DETAIL else text[: MAX_SELFTEST_DETAIL - 1] + "…"
