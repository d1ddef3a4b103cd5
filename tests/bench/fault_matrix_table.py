"""The fault matrix's observed figures for docs/RELIABILITY.md: every cell of tests/system/test_fault_matrix.py.

    python -m tests.bench.fault_matrix_table [--real]

Each row: what the injector did (chunks hit, both directions) beside what the far end's own counters saw, the
launchers' watchdog trips and re-arms, and host vs board launches.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hil.drivers.faults import LinkFault
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import (
    MOCK_RIG,
    RAID,
    REAL,
    VIRTUAL,
    injected_chunks,
    launcher_anomalies,
    radar_anomalies,
    rig_tcp,
)


def far_end(summary: dict[str, Any], fault: LinkFault) -> str:
    link = summary["links"][fault.link]
    if fault.link.startswith("radar"):
        return (f"{radar_anomalies(link)} anomalies (CRC {link['rejected']['crc']}, frames lost {link['frames_lost']}, "
                f"bytes discarded {link['bytes_discarded']}, duplicates {link['duplicates']}, restarts "
                f"{link['seq_resets']}); plots {summary['plots']}")
    return (f"{launcher_anomalies(link)} anomalies (timeouts {link['timeouts']}, late {link['late_replies']}, "
            f"bad {link['bad_responses']}, lost {link['lost_events']}, reconnects {link['reconnects']})")


def row(spec: str, time_mode: str, summary: dict[str, Any]) -> str:
    fault = LinkFault.parse(spec)
    counts = summary.get("faults_injected", {}).get(fault.link)
    injected = f"{injected_chunks(counts, fault.kind)} chunks" if counts else "board stops answering"
    health = summary["launcher_health"]
    trips = sum(h["watchdog_trips"] for h in health.values())
    rearms = sum(h["rearms"] for h in health.values())
    return (f"| `{spec}` | {time_mode} | {injected} | {far_end(summary, fault)} | {trips} / {rearms} | "
            f"{summary['launches']} / {summary['board_launches']} | {'yes' if summary['rig_ok'] else 'no'} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", action="store_true", help="also the real-time cells (about 25 s each)")
    args = p.parse_args(argv)
    print("| fault | time | injected | seen by the far end | watchdog trips / re-arms | launches host / board "
          "| rig ok |")
    print("|---|---|---|---|---|---|---|")
    for spec, _ in VIRTUAL:
        summary = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(), seed=3, time_mode="virtual",
                                       out_dir=None, duration_s=35.0, record=False, report=False,
                                       faults=(LinkFault.parse(spec),)))
        print(row(spec, "virtual", summary), flush=True)
    if args.real:
        for spec, transport in REAL:
            with tempfile.TemporaryDirectory() as tmp:
                rig = rig_tcp(Path(tmp)) if transport == "tcp" else MOCK_RIG
                out = Path(tmp) / "run"
                subprocess.run([sys.executable, "-m", "hil", "run", "--time", "real", "--rig", str(rig),
                                "--duration", "18", "--quiet", "--no-record", "--out", str(out), "--fault", spec],
                               capture_output=True, text=True, timeout=180)
                print(row(spec, f"real ({transport})", json.loads((out / "summary.json").read_text())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
