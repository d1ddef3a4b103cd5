"""The run folder: summary.json and the evidence behind it, written as the run goes (see README, "Run folder")."""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import ConfigError, HilError
from hil.scenario import Scenario

log = logging.getLogger("hil.run")

PLOT_COLUMNS = ["time_s", "sensor", "range_m", "azimuth_deg", "elevation_deg", "range_rate_mps"]
TRUTH_COLUMNS = ["time_s", "target", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps"]
TRACK_COLUMNS = ["time_s", "track", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps", "status"]
GOSPA_COLUMNS = ["time_s", "gospa_m", "localisation_m", "missed_m", "false_m", "n_truth", "n_tracks"]
EVENT_COLUMNS = ["time_s", "event", "track", "target", "launcher", "detail"]


FLUSH_PERIOD_S = 0.5  # rows reach the file this often (checked on each write): a killed run loses at most this
MAX_PENDING_CHARS = 1 << 20  # a burst of rows is written out before the period ends rather than held in memory
METRICS_ROWS_PER_STAGE = 100  # truth or track rows a stage of metrics_in_stages writes
JOURNAL_ITEMS_PER_STAGE = 200  # items of a long list of the summary one stage of journal_in_stages encodes
JOURNAL_WRITE_BYTES = 1 << 17  # of the summary's file, written a stage of the journal (journal_in_stages)
PILE_CHECK_WRITES = 64  # writes between two looks at the rows piled up (MAX_PENDING_CHARS)


class _RecordFile:
    """One record file of the run: rows gather in memory and reach the file whole, in one os.write per flush.

    Writing whole rows only (never a buffer's worth cut anywhere) keeps every file of a killed run readable up
    to its last row; os.write puts them in the kernel's page cache, which survives the process (not the machine).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.pending = io.StringIO()

    def flush(self) -> None:
        data = self.pending.getvalue()
        self.pending.seek(0)
        self.pending.truncate()
        if not data or self.fd is None:
            return  # nothing new, or a late row after close(): the file is final
        try:
            _write_all(self.fd, data.encode("utf-8"))
        except OSError as e:
            raise RunFolderError(f"{self.path}: cannot write the run's records ({e.strerror or e})") from None

    def close(self, fsync: bool = False) -> None:
        if self.fd is None:
            return
        try:
            self.flush()
            if fsync:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = None


def event_row(scenario: Any, t_s: float, event: str, track: int = -1, target: int = -1, launcher: int = -1,
              detail: str = "") -> dict[str, Any]:
    """One events.csv row: the target and launcher by name (rows of the scenario; -1: none)."""
    return {"time_s": round(t_s, 4), "event": event, "track": track,
            "target": scenario.targets[target].name if target >= 0 else "",
            "launcher": scenario.launchers[launcher].name if launcher >= 0 else "", "detail": detail}


class RunWriter:
    """The run folder as the run goes: records flushed every FLUSH_PERIOD_S, the summary journalled, then finished.

    plots() / event() / decision() / metrics() append rows; the rows of every file reach the disk together
    at the first write once FLUSH_PERIOD_S has passed since the last flush (one clock read per write decides;
    the runtime writes GOSPA every second, so no row waits much longer) and at every flush() and journal().
    journal(summary) replaces summary.json atomically with the summary so far ("complete": false);
    finish(summary, latency, floor, interrupted=...) writes the final one ("complete": true) and the report.
    The recording (recording.pcapng) goes to the kernel frame by frame (hil.records.recording.Recorder).
    No fsync while the run goes (a killed process loses nothing the kernel holds, and an fsync can stall the
    loop for milliseconds); finish() fsyncs each file once, so a finished run also survives a power cut.
    """

    def __init__(self, out_dir: Path, scenario: Scenario, record: bool = True, report: bool = True,
                 clock: Callable[[], float] = time.monotonic, flush_period_s: float = FLUSH_PERIOD_S) -> None:
        self.report = report
        self.dir = Path(out_dir)
        self.scenario = scenario
        self.clock = clock
        self.flush_period_s = flush_period_s
        self.flushes = 0
        self.finished = False
        self._journal_warned = False
        self._files: list[_RecordFile] = []
        self._writes = 0  # rows written (_written)
        self._recording: Any = None
        try:
            self._open(record)
        except OSError as e:
            self.close()
            raise ConfigError("--out", str(self.dir), _unwritable(self.dir, e)) from None
        self._last_flush = clock()

    def _open(self, record: bool) -> None:
        if self.dir.exists() and not self.dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self.dir))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._plots = self._csv("plots.csv", PLOT_COLUMNS)
        self._truth = self._csv("truth.csv", TRUTH_COLUMNS)
        self._tracks = self._csv("tracks.csv", TRACK_COLUMNS)
        self._gospa = self._csv("gospa.csv", GOSPA_COLUMNS)
        self._events = self._csv("events.csv", EVENT_COLUMNS)
        self._decisions = _RecordFile(self.dir / "decisions.jsonl")
        self._files.append(self._decisions)
        if record:
            from hil.records.recording import Recorder

            self._recording = Recorder(self.dir / "recording.pcapng")
        self._write_sensors()
        if Path(self.scenario.source).is_file():  # the run folder stands alone: report and replay read it
            shutil.copyfile(self.scenario.source, self.dir / "scenario.toml")
        # a run killed before the runtime's first journal still leaves a summary.json that says so
        self._replace_json("summary.json", {"scenario": self.scenario.name, "scenario_file": self.scenario.source,
                                            "complete": False})
        self.flush()  # the header rows

    @property
    def recorder(self) -> Any:
        return self._recording.record if self._recording else None

    def _csv(self, name: str, columns: list[str]) -> Any:
        f = _RecordFile(self.dir / name)
        self._files.append(f)
        w = csv.writer(f.pending)
        w.writerow(columns)
        return w

    def _write_sensors(self) -> None:
        """The radars as `hil track --sensors` reads them, so the run's plots can be re-tracked offline."""
        lines = []
        for r in self.scenario.radars:
            lines += [
                "[[sensor]]", f'name = "{r.name}"', f"site_enu_m = [{r.site[0]}, {r.site[1]}, {r.site[2]}]",
                f"sigma_range_m = {r.sigma_range_m}", f"sigma_azimuth_deg = {math.degrees(r.sigma_azimuth_rad)}",
                f"sigma_elevation_deg = {math.degrees(r.sigma_elevation_rad)}",
                f"sigma_range_rate_mps = {r.sigma_range_rate_mps}", "",
            ]
        (self.dir / "sensors.toml").write_text("\n".join(lines))

    # ---- the records ----------------------------------------------------------------------------------

    def _written(self) -> None:
        """After each write: flush when the period is over (one clock read) or a burst has piled up (looked at
        every PILE_CHECK_WRITES writes: a look at every file's size costs microseconds, and a burst of hundreds
        of events in one loop iteration paid it for each)."""
        self._writes += 1
        if self.clock() - self._last_flush >= self.flush_period_s or (
                self._writes % PILE_CHECK_WRITES == 0 and any(f.pending.tell() > MAX_PENDING_CHARS
                                                              for f in self._files)):
            self.flush()

    def flush(self) -> None:
        """Every record file's rows so far into the file (the kernel's page cache): what a killed run keeps."""
        for _ in self.flush_in_stages():
            pass

    def flush_in_stages(self) -> Iterator[None]:
        """flush(), a record file a stage (the journal, in the loop)."""
        for f in self._files:
            f.flush()
            yield
        self._last_flush = self.clock()
        self.flushes += 1

    def plots(self, t_s: np.ndarray, sensor: np.ndarray, rng: np.ndarray, az: np.ndarray, el: np.ndarray,
              rr: np.ndarray) -> None:
        # the time in full (repr): with the recording's plot times it gives back the run's time origin exactly
        for row in zip(t_s.tolist(), sensor.tolist(), rng.tolist(), np.degrees(az).tolist(),
                       np.degrees(el).tolist(), rr.tolist(), strict=True):
            self._plots.writerow([repr(row[0]), row[1], f"{row[2]:.2f}", f"{row[3]:.5f}", f"{row[4]:.5f}",
                                  "" if math.isnan(row[5]) else f"{row[5]:.2f}"])
        self._written()

    def event(self, row: dict[str, Any]) -> None:
        self._events.writerow([row[c] for c in EVENT_COLUMNS])
        self._written()

    def decision(self, record: dict[str, Any]) -> None:
        self._decisions.pending.write(json.dumps(record, default=_json_default) + "\n")
        self._written()

    def metrics(self, t: float, snap: Any, tracks: Any, confirmed: np.ndarray, g: Any) -> None:
        """One metrics sample: the truth rows, the confirmed tracks' rows and the GOSPA row."""
        for _ in self.metrics_in_stages(t, snap, tracks, confirmed, g):
            pass

    def metrics_in_stages(self, t: float, snap: Any, tracks: Any, confirmed: np.ndarray, g: Any) -> Iterator[None]:
        """metrics(), METRICS_ROWS_PER_STAGE rows a stage (the loop's staged work: at 300 targets the rows of one
        sample take milliseconds)."""
        # rows of Python floats: formatting a numpy float costs several times more (the text is the same)
        stamp, names, step = f"{t:.3f}", self.scenario.targets, METRICS_ROWS_PER_STAGE
        rows, states = snap.index.tolist(), snap.state.tolist()
        for lo in range(0, len(rows), step):
            self._truth.writerows([stamp, names[row].name, *(f"{v:.2f}" for v in state)]
                                  for row, state in zip(rows[lo:lo + step], states[lo:lo + step], strict=True))
            yield
        shown = confirmed.nonzero()[0]
        ids, states = tracks.track_id[shown].tolist(), tracks.state[shown].tolist()
        for lo in range(0, len(ids), step):
            self._tracks.writerows([stamp, tid, *(f"{v:.2f}" for v in state), "confirmed"]
                                   for tid, state in zip(ids[lo:lo + step], states[lo:lo + step], strict=True))
            yield
        self._gospa.writerow([f"{t:.3f}", f"{g.total:.2f}", f"{g.localisation:.2f}", f"{g.missed:.2f}",
                              f"{g.false:.2f}", len(snap.index), int(confirmed.sum())])
        self._written()

    # ---- the summary ----------------------------------------------------------------------------------

    def journal(self, summary: dict[str, Any]) -> None:
        """The summary so far as summary.json ("complete": false), replaced atomically; the records flushed first.

        A journal that cannot be written is a warning, not the end of the run (finish() still reports it).
        """
        for _ in self.journal_in_stages(summary):
            pass

    def journal_in_stages(self, summary: dict[str, Any]) -> Iterator[None]:
        """journal(), in stages: the flush (a file a stage), then the JSON a part at a time (_json_in_stages: a long
        list, at any depth, JOURNAL_ITEMS_PER_STAGE items at a time: at 300 targets the refusals alone take
        milliseconds to encode, and a long run's plant holds thousands of rounds), then the file
        (_replace_text_in_stages). The text is json.dumps' own, byte for byte."""
        if self.finished:
            return
        try:
            yield from self.flush_in_stages()
            text = yield from _json_in_stages({**summary, "complete": False})
            yield
            yield from self._replace_text_in_stages("summary.json", text)
        except (OSError, RunFolderError) as e:
            if not self._journal_warned:
                log.warning("no journal of the summary in %s: %s", self.dir, e)
                self._journal_warned = True

    def finish(self, summary: dict[str, Any], latency: Any, floor: Any = None, interrupted: bool = False) -> None:
        """The final summary.json ("complete": true, "interrupted" as given), latency.json, then report.html.

        interrupted: the run was ended early (a signal); the report says so. finish() owns the "complete" and
        "interrupted" fields of summary.json, whatever the summary passed in holds.
        """
        encoded = latency.encode()
        if floor is not None:
            from hil.measure.latency import encode_histogram

            encoded["floor"] = encode_histogram(floor)
        try:
            self.close(fsync=True)
            self._replace_json("latency.json", encoded, fsync=True)
            summary["complete"], summary["interrupted"] = True, bool(interrupted)
            self._replace_json("summary.json", summary, fsync=True)
        except OSError as e:
            raise RunFolderError(f"{self.dir}: cannot write the run's summary ({e.strerror or e})") from None
        self.finished = True
        if not self.report:
            return
        try:
            from hil.records.report import render_report

            render_report(self.dir)
        except Exception as e:  # the report is evidence, not the result: never lose a run's end to it
            log.warning("no HTML report: %s", e)

    def close(self, fsync: bool = False) -> None:
        """Flush and close every record file and the recording (finish() does it; safe to call again)."""
        try:
            for f in self._files:
                f.close(fsync)
        finally:
            if self._recording:
                self._recording.close(fsync)

    def _replace_json(self, name: str, content: Any, fsync: bool = False) -> None:
        """name's content replaced by content as indented JSON, atomically (_replace_text). Indented, json encodes
        in Python (12 ms for a 300-target summary): the journal, in the loop, is one line (journal_in_stages)."""
        self._replace_text(name, json.dumps(content, indent=2, default=_json_default), fsync)

    def _replace_text(self, name: str, text: str, fsync: bool = False) -> None:
        """name's content replaced by text (and a newline), atomically (_replace_text_in_stages, all at once)."""
        for _ in self._replace_text_in_stages(name, text, fsync):
            pass

    def _replace_text_in_stages(self, name: str, text: str, fsync: bool = False) -> Iterator[None]:
        """name's content replaced by text (and a newline), atomically: the temporary file sits in the same folder, so
        os.replace() is one rename, and a reader (or a run killed mid-write) sees the old file or the new one, never
        half of one. In stages (the journal, in the loop: at 300 targets the summary is half a megabyte, and its write
        took 3 ms there): the new file JOURNAL_WRITE_BYTES a stage, then the rename, then the old file's blocks freed,
        which took most of a millisecond (a hard link keeps them until that stage; a folder without hard links frees
        them in the rename's stage). A link left by a run that ended in these stages goes at the next replace."""
        path, tmp, old = self.dir / name, self.dir / f".{name}.tmp", self.dir / f".{name}.old"
        data = memoryview((text + "\n").encode("utf-8"))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while data:
                data = data[os.write(fd, data[:JOURNAL_WRITE_BYTES]):]
                if data:
                    yield
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        yield
        old.unlink(missing_ok=True)
        try:
            os.link(path, old)
        except OSError:  # no file yet, or no hard links here
            os.replace(tmp, path)
            return
        try:
            os.replace(tmp, path)
        except OSError:
            old.unlink(missing_ok=True)
            raise
        yield
        old.unlink(missing_ok=True)


class RunFolderError(HilError):
    """A run folder whose files cannot be written while the run goes (disk full, folder removed)."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unwritable(path: Path, e: OSError) -> str:
    """Why a run folder cannot be made at path, in words."""
    if isinstance(e, NotADirectoryError | FileExistsError) and path.exists() and not path.is_dir():
        return "is a file, not a folder for the run"
    where = f" ({e.filename})" if e.filename and Path(e.filename) != path else ""
    return f"cannot write the run folder here: {e.strerror or e}{where}"


def _json_in_stages(value: Any) -> Generator[None, None, str]:
    """json.dumps(value, default=_json_default), byte for byte, a stage at a time: a list longer than
    JOURNAL_ITEMS_PER_STAGE is encoded that many items a stage, wherever it is (a dict with only str keys is
    encoded entry by entry to reach the lists inside it); everything else in one piece. A list or dict is taken as
    it is when its encoding starts (the run goes on between stages and may add to what the summary holds)."""
    if isinstance(value, list) and len(value) > JOURNAL_ITEMS_PER_STAGE:
        value = list(value)
        items = []
        for lo in range(0, len(value), JOURNAL_ITEMS_PER_STAGE):
            items.append(json.dumps(value[lo:lo + JOURNAL_ITEMS_PER_STAGE], default=_json_default)[1:-1])
            yield
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict) and value and all(type(k) is str for k in value):
        parts = []
        for key, item in list(value.items()):
            text = yield from _json_in_stages(item)
            parts.append(f"{json.dumps(key)}: {text}")
        return "{" + ", ".join(parts) + "}"
    return json.dumps(value, default=_json_default)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
