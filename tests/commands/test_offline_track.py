"""hil track: CSV plots and sensors.toml in, confirmed tracks out, scored against truth; malformed input named."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.commands.cli import main as hil_main
from hil.commands.track import add_arguments, main, read_plots, read_truth
from hil.errors import ConfigError
from hil.geo import geodetic_to_enu
from hil.host.tracking import load_sensors
from hil.plant.radars import scan_plots
from hil.scenario import tracking_scenario


def write_case(tmp: Path, n_targets: int = 6, duration_s: float = 40.0) -> tuple[Path, Path, Path]:
    """Plots, sensors and truth files of a small generated scene (one radar at the origin)."""
    sc = tracking_scenario(n_targets, seed=5, duration_s=duration_s, clutter_per_scan=5, min_range_m=5_000,
                           max_range_m=40_000)
    truth = sc.truth()
    plots, sensors, truth_csv = tmp / "plots.csv", tmp / "sensors.toml", tmp / "truth.csv"
    sensors.write_text('[[sensor]]\nname = "north"\nsite_enu_m = [0.0, 0.0, 10.0]\n')
    with open(plots, "w", newline="") as f, open(truth_csv, "w", newline="") as g:
        w, wt = csv.writer(f), csv.writer(g)
        w.writerow(["time_s", "sensor", "range_m", "azimuth_deg", "elevation_deg", "range_rate_mps"])
        wt.writerow(["time_s", "target", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps"])
        for t_end, _, p, _ in scan_plots(sc, truth):
            for k in range(len(p)):
                w.writerow([f"{p.t_s[k]:.6f}", "north", f"{p.range_m[k]:.2f}", f"{math.degrees(p.azimuth_rad[k]):.5f}",
                            f"{math.degrees(p.elevation_rad[k]):.5f}", f"{p.range_rate_mps[k]:.2f}"])
            snap = truth.at(t_end)
            for i, x in zip(snap.index.tolist(), snap.state.tolist(), strict=True):
                wt.writerow([f"{t_end:.3f}", i, *(f"{v:.2f}" for v in x)])
    return plots, sensors, truth_csv


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return main(parser.parse_args(argv))


def test_tracks_every_target_and_scores_against_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plots, sensors, truth = write_case(tmp_path)
    out = tmp_path / "tracks.csv"
    assert run(["--plots", str(plots), "--sensors", str(sensors), "--out", str(out), "--truth", str(truth)]) == 0
    text = capsys.readouterr().out
    assert "kernel time per scan: median" in text and "identity switches" in text
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    last = max(float(r["time_s"]) for r in rows)
    final = [r for r in rows if float(r["time_s"]) == last]
    assert len(final) == 6  # one confirmed track per target at the end, no clutter track
    assert {r["status"] for r in rows} == {"confirmed"}
    gospa = float(text.split("per live target ")[1].split(" m")[0])
    assert gospa < 200.0


def test_the_hil_command_runs_track(tmp_path: Path) -> None:
    plots, sensors, _ = write_case(tmp_path, n_targets=2, duration_s=10.0)
    out = tmp_path / "t.csv"
    assert hil_main(["track", "--plots", str(plots), "--sensors", str(sensors), "--out", str(out)]) == 0
    assert out.read_text().startswith("time_s,track,x_m,y_m,z_m,vx_mps,vy_mps,vz_mps,status")


@pytest.mark.parametrize(("row", "problem"), [
    ("1.0,north,abc,10,1,5", "range_m is not a number"),
    ("1.0,south,1000,10,1,5", "unknown sensor 'south'"),
    ("1.0,north,1000,10", "expected 6 fields"),
    ("1.0,north,1000,10,95,5", "elevation_deg must be in"),
    ("1.0,north,-5,10,1,5", "range_m must be positive"),
    ("nan,north,1000,10,1,5", "time_s must be finite"),
])
def test_malformed_rows_name_their_line(tmp_path: Path, row: str, problem: str) -> None:
    plots = tmp_path / "p.csv"
    header = "time_s,sensor,range_m,azimuth_deg,elevation_deg,range_rate_mps\n"
    plots.write_text(header + "0.5,north,900,1,1,\n" + row + "\n")
    with pytest.raises(ConfigError, match=f"line 3: .*{problem}"):
        read_plots(plots, ["north"])


def test_wrong_header_and_bad_sensors_file_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plots = tmp_path / "p.csv"
    plots.write_text("t,sensor,range\n")
    with pytest.raises(ConfigError, match="line 1: header must be"):
        read_plots(plots, ["north"])
    sensors = tmp_path / "s.toml"
    sensors.write_text('[[sensor]]\nname = "a"\nsite_lla = [52.0, 4.0, 0.0]\n')
    with pytest.raises(ConfigError, match="needs origin_lla"):
        load_sensors(sensors)
    sensors.write_text('[[sensor]]\nname = "a"\nsite_enu_m = [0, 0, 0]\nsigma_range = 5\n')
    with pytest.raises(ConfigError, match=r"sensor\[0\]\.sigma_range: unknown field"):
        load_sensors(sensors)
    assert hil_main(["track", "--plots", str(plots), "--sensors", str(sensors), "--out", str(tmp_path / "o")]) == 2
    assert "unknown field" in capsys.readouterr().err


def test_sites_in_latitude_longitude_go_through_the_enu_origin(tmp_path: Path) -> None:
    sensors = tmp_path / "s.toml"
    sensors.write_text('origin_lla = [52.0, 4.0, 0.0]\n[[sensor]]\nname = "a"\nsite_lla = [52.1, 4.0, 30.0]\n'
                       'sigma_azimuth_deg = 0.5\n')
    (s,) = load_sensors(sensors)
    assert np.allclose(s.site_enu_m, geodetic_to_enu(52.1, 4.0, 30.0, (52.0, 4.0, 0.0)))
    assert s.site_enu_m[1] == pytest.approx(11_100, rel=0.01)  # 0.1 degree of latitude is about 11.1 km north
    assert s.sigma_azimuth_rad == pytest.approx(math.radians(0.5))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short virtual-time run of the default scenario, as `hil run` leaves it."""
    out = tmp_path_factory.mktemp("run") / "raid"
    assert hil_main(["run", "--time", "virtual", "--duration", "10", "--quiet", "--out", str(out)]) in (0, 1)
    return out


@pytest.mark.slow
def test_a_run_folder_is_tracked_again_and_scored_against_its_own_truth(
        run_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    # the command as a user types it on a run folder: its truth names targets ("bomber-1"), no --out needed
    assert hil_main(["track", "--plots", str(run_folder / "plots.csv"), "--sensors", str(run_folder / "sensors.toml"),
                     "--truth", str(run_folder / "truth.csv")]) == 0
    text = capsys.readouterr().out
    assert "(no --out: not written)" in text
    assert "identity switches" in text
    gospa = float(text.split("per live target ")[1].split(" m")[0])
    assert 0.0 <= gospa <= 1000.0  # scored: a target nobody tracks costs c / 2 = 500 m, not nothing
    with open(run_folder / "truth.csv", newline="") as f:
        names = {row["target"] for row in csv.DictReader(f)}
    assert "bomber-1" in names
    _, ids, _ = read_truth(run_folder / "truth.csv")
    assert len(set(ids.tolist())) == len(names)  # one identity per named target
    out = run_folder / "again.csv"
    assert hil_main(["track", "--plots", str(run_folder / "plots.csv"), "--sensors", str(run_folder / "sensors.toml"),
                     "--truth", str(run_folder / "truth.csv"), "--out", str(out)]) == 0
    with open(out, newline="") as f:
        assert len(list(csv.DictReader(f))) > 0  # the raid's targets are tracked again from its plots


def test_truth_targets_are_numbers_or_names_and_an_empty_one_is_named(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    header = "time_s,target,x_m,y_m,z_m,vx_mps,vy_mps,vz_mps\n"
    truth.write_text(header + "1.0,bomber-1,0,0,0,0,0,0\n1.0,7,1,0,0,0,0,0\n0.5,bomber-1,2,0,0,0,0,0\n")
    t, ids, states = read_truth(truth)
    assert t.tolist() == [0.5, 1.0, 1.0]
    assert ids.tolist() == [0, 0, 1]  # bomber-1 both times, 7 another target
    assert states[:, 0].tolist() == [2.0, 0.0, 1.0]
    truth.write_text(header + "1.0, ,0,0,0,0,0,0\n")
    with pytest.raises(ConfigError, match="line 2: target is empty"):
        read_truth(truth)


label_st = st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters=",\"\u2028\u2029\x85"),
                   min_size=1, max_size=12).filter(lambda x: x.strip() == x and x != "")


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(label_st, min_size=1, max_size=20))
def test_any_target_label_keeps_one_identity(tmp_path_factory: pytest.TempPathFactory, labels: list[str]) -> None:
    truth = tmp_path_factory.mktemp("truth") / "truth.csv"
    rows = "".join(f"{k}.0,{label},{k},0,0,0,0,0\n" for k, label in enumerate(labels))
    truth.write_text("time_s,target,x_m,y_m,z_m,vx_mps,vy_mps,vz_mps\n" + rows, encoding="utf-8")
    _, ids, states = read_truth(truth)
    by_label: dict[str, int] = {}
    for label, i in zip(labels, ids.tolist(), strict=True):
        assert by_label.setdefault(label, i) == i  # the same label, the same identity
    assert len(set(ids.tolist())) == len(set(labels))
    assert states[:, 0].tolist() == [float(k) for k in range(len(labels))]
