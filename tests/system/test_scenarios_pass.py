"""Every shipped scenario meets its own [criteria] (and the always-on safety pair) on its own seed, run through hil's
pytest plugin as a user's CI runs theirs: mock rig and virtual time by default, or whatever --hil-rig and
--hil-time say."""

from __future__ import annotations

import pytest

from hil.pytest_plugin import HilRun, assert_verdict
from hil.shipped import shipped_names


@pytest.mark.slow
@pytest.mark.parametrize("scenario", shipped_names("scenario"))
def test_a_shipped_scenario_meets_its_criteria(hil_run: HilRun, scenario: str) -> None:
    result = hil_run(scenario, record=False)
    assert_verdict(result)
    own = [c["name"] for c in result.verdict["criteria"] if c["source"] != "always"]
    assert own, f"{scenario} carries no [criteria] of its own"
    judged = [c["name"] for c in result.verdict["criteria"] if c["result"] == "pass"]
    assert {"friendly_engagements", "friendly_kills"} <= set(judged)
