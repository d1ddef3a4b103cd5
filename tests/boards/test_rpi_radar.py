"""The Raspberry Pi radar: ASTERIX datagrams on UDP to the host's RadarLink, checked independently by tshark."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hil.drivers.radar_link import RadarLink
from hil.drivers.transport import UdpTransport
from hil.geo import enu_to_polar
from hil.plant.radars import config_from_spec
from hil.procutil import Child
from hil.records.recording import Recorder
from hil.scenario import RadarSpec
from tests.helpers import RPI_FIRMWARE, require_tool

TARGETS = np.array([[20_000.0, 20_000.0, 3_000.0, -150.0, 0.0, 0.0], [-30_000.0, 5_000.0, 6_000.0, 0.0, -200.0, 0.0]])


def test_pi_radar_plots_reach_the_host_and_tshark_reads_the_same_values(tmp_path: Path) -> None:
    host = UdpTransport("127.0.0.1", 0)
    pi = Child([sys.executable, str(RPI_FIRMWARE / "radar.py"), "--udp",
                f"127.0.0.1:{host.local_port}", "--bind", "127.0.0.1:0"], name="pi radar")
    recording = tmp_path / "pi.pcapng"
    recorder = Recorder(recording)
    try:
        bind_host, _, bind_port = pi.info["udp"].rpartition(":")
        host.peer = (bind_host, int(bind_port))
        spec = RadarSpec(name="pi", site=(0.0, 0.0, 10.0), scan_period_s=0.5, pd=1.0, clutter_per_scan=0.0)
        link = RadarLink(host, sensor_index=0, site_enu=spec.site, recorder=recorder.record, name="pi")
        link.send_config(config_from_spec(spec, seed=1))
        link.send_stimulus([1, 2], [-1, 0o4001], TARGETS)
        got: list[tuple[float, float, float, int]] = []
        sectors = 0
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and (len(got) < 4 or sectors < 8):
            time.sleep(0.01)
            plots, crossings = link.poll()
            sectors += len(crossings)
            got += [(plots.range_m[i], plots.azimuth_rad[i], plots.elevation_rad[i], plots.mode3a[i])
                    for i in range(plots.n)]
    finally:
        pi.stop()
        recorder.close()
        host.close()
    assert len(got) >= 4 and sectors >= 8
    r_true, az_true, _ = enu_to_polar(TARGETS[:, :3] - np.array([0.0, 0.0, 10.0]))
    for rng, az, _el, code in got:
        k = int(np.argmin(np.abs(rng - r_true)))
        assert abs(rng - r_true[k]) < 500.0  # the targets move at most 150 m/s x 1 s; sigma_r is 50 m
        assert abs((az - az_true[k] + np.pi) % (2 * np.pi) - np.pi) < np.radians(1.5)
        assert code == (0o4001 if k == 1 else -1) or code == -1  # IFF replies with p = 0.98

    tshark = require_tool("tshark", "tshark")
    out = subprocess.run([tshark, "-r", str(recording), "-d", "udp.port==8600,asterix", "-T", "fields",
                          "-e", "asterix.048_040_RHO", "-e", "asterix.048_040_THETA",
                          "-Y", "asterix.category == 48"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    decoded = [(float(rho) * 1852.0, float(theta)) for line in out.stdout.splitlines()
               for rho, theta in zip(*(col.split(",") for col in line.split("\t")), strict=True)]
    assert len(decoded) == len(got)
    for (rng_ts, theta_ts), (rng, az) in zip(sorted(decoded), sorted((g[0], g[1]) for g in got), strict=True):
        assert abs(rng_ts - rng) < 8.0  # one RHO step (1/256 NM) at most
        assert abs((theta_ts - np.degrees(az) + 180) % 360 - 180) < 0.01
