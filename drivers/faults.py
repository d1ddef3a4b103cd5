"""Link faults: the `--fault` grammar and a seeded injector that decides what a faulty link delivers, and when.

Grammar (the CLI's `--fault` and the scenario's `faults = [...]`): ``LINK:KIND[=ARG][/DIR]@START[+DURATION]``

    launcher-north:drop=0.01@8          1 % of the bytes lost, both directions, from 8 s to the end
    radar-west:delay=2.0@10+5           every chunk 2 s late from 10 s to 15 s
    launcher-south:cut@20+3             cable cut from 20 s to 23 s (TCP: the connection is closed)
    radar-east:stall@15+2/up            nothing from the board for 2 s, then all of it at once

Times are seconds after the run's start. DIR is up (board to host), down (host to board) or both (default).
Byte kinds act in the byte stream (FaultInjector); silent and resume act on the board itself (the runtime).

    drop=P       each byte is lost with probability P (per byte)
    corrupt=P    each byte gets one bit flipped with probability P (per byte)
    delay=S      every chunk arrives S seconds late (the stream keeps its order)
    stall        nothing passes for the duration, then everything held passes at once
    duplicate=P  a chunk is delivered twice with probability P (per chunk)
    cut          everything sent (or still held) during the cut is lost; a TCP link is closed
    silent       the board stops answering (a hung board); with +DURATION it resumes afterwards
    resume       the board answers again

FaultInjector is deterministic: for a seed, the same chunks at the same times give the same bytes, bit for bit.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hil.errors import ConfigError

BYTE_KINDS = ("drop", "corrupt", "delay", "stall", "duplicate", "cut")
BOARD_KINDS = ("silent", "resume")
KINDS = BYTE_KINDS + BOARD_KINDS
DIRECTIONS = ("up", "down")  # up: board -> host; down: host -> board
PROBABILITY_KINDS = ("drop", "corrupt", "duplicate")
MAX_DELAY_S = 3600.0
MAX_TIME_S = 1e6  # about 11 days: longer than any run

_SPEC = re.compile(r"(?P<link>[A-Za-z0-9_.\-]+):(?P<kind>[a-z]+)(?:=(?P<arg>[^/@]*))?(?:/(?P<dir>[a-z]*))?"
                   r"@(?P<start>[^+/]*)(?:\+(?P<duration>[^/]*))?")
EXAMPLE = "LINK:KIND[=ARG][/DIR]@START[+DURATION], e.g. launcher-north:drop=0.01@8 or radar-east:stall@15+2/up"


@dataclass(frozen=True)
class LinkFault:
    """One scheduled fault on one link (see the module docstring for the grammar and the kinds)."""

    link: str
    kind: str
    start_s: float
    duration_s: float | None = None  # None: to the end of the run
    arg: float | None = None  # a probability (drop, corrupt, duplicate) or seconds (delay)
    direction: str = "both"

    @classmethod
    def parse(cls, text: str, source: str = "--fault", field: str | None = None) -> LinkFault:
        """A fault from its text; a bad one is one ConfigError line naming the source and the field."""
        def fail(problem: str) -> ConfigError:
            return ConfigError(source, field or repr(text), problem)

        if not isinstance(text, str):
            raise fail(f"must be a string like {EXAMPLE}")
        # the direction may come before or after the times: radar-east:stall@15+2/up reads as the docs say
        m = _SPEC.fullmatch(text.strip()) or _SPEC.fullmatch(_move_direction(text.strip()))
        if m is None:
            raise fail(f"must be {EXAMPLE}")
        kind = m["kind"]
        if kind not in KINDS:
            raise fail(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        start = _number(m["start"], "start", fail, lo=0.0, hi=MAX_TIME_S)
        duration = None
        if m["duration"] is not None:
            duration = _number(m["duration"], "duration", fail, lo=0.0, hi=MAX_TIME_S)
            if duration <= 0:
                raise fail("duration must be more than 0 s")
        arg = None
        if kind in PROBABILITY_KINDS or kind == "delay":
            if not m["arg"]:
                raise fail(f"{kind} needs a value: {kind}=" + ("SECONDS" if kind == "delay" else "PROBABILITY"))
            if kind == "delay":
                arg = _number(m["arg"], "delay", fail, lo=0.0, hi=MAX_DELAY_S)
                if arg <= 0:
                    raise fail("delay must be more than 0 s")
            else:
                arg = _number(m["arg"], kind, fail, lo=0.0, hi=1.0)
        elif m["arg"] is not None:
            raise fail(f"{kind} takes no value")
        direction = m["dir"] if m["dir"] is not None else "both"
        if direction not in ("up", "down", "both"):
            raise fail(f"direction {direction!r} must be up, down or both")
        if kind in BOARD_KINDS and m["dir"] is not None:
            raise fail(f"{kind} acts on the board, not on one direction")
        if kind == "resume" and duration is not None:
            raise fail("resume takes no duration")
        return cls(m["link"], kind, start, duration, arg, direction)

    def __str__(self) -> str:
        text = f"{self.link}:{self.kind}"
        if self.arg is not None:
            text += f"={self.arg:g}"
        if self.direction != "both":
            text += f"/{self.direction}"
        text += f"@{self.start_s:g}"
        return text + (f"+{self.duration_s:g}" if self.duration_s is not None else "")

    @property
    def end_s(self) -> float:
        return math.inf if self.duration_s is None else self.start_s + self.duration_s

    def acts_on(self, direction: str) -> bool:
        return self.direction in ("both", direction)

    def as_dict(self) -> dict[str, Any]:
        """For summary.json: the fault as written and its parts."""
        return {"fault": str(self), "link": self.link, "kind": self.kind, "start_s": self.start_s,
                "duration_s": self.duration_s, "value": self.arg, "direction": self.direction}


def _move_direction(text: str) -> str:
    head, sep, direction = text.rpartition("/")
    if not sep or "@" not in head:
        return text
    at = head.index("@")
    return f"{head[:at]}/{direction}{head[at:]}"


def _number(text: str, what: str, fail: Callable[[str], ConfigError], lo: float, hi: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise fail(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise fail(f"{what} must be a number from {lo:g} to {hi:g}, got {text!r}")
    return value


def parse_faults(texts: Iterable[str], source: str = "--fault") -> tuple[LinkFault, ...]:
    """Every fault of a list (the scenario's faults name their index: faults[2])."""
    return tuple(LinkFault.parse(t, source, None if source == "--fault" else f"faults[{i}]")
                 for i, t in enumerate(texts))


def check_links(faults: Iterable[LinkFault], names: Iterable[str], source: str = "--fault") -> None:
    """ConfigError for a fault on a link the scenario does not have."""
    known = set(names)
    for f in faults:
        if f.link not in known:
            raise ConfigError(source, str(f), f"no link named {f.link!r} (links: {', '.join(sorted(known))})")


def board_events(faults: Iterable[LinkFault]) -> list[tuple[float, str, str]]:
    """The silent/resume faults as (time_s, link, "silent" | "resume") in time order (silent+D resumes at +D)."""
    out: list[tuple[float, str, str]] = []
    for f in faults:
        if f.kind in BOARD_KINDS:
            out.append((f.start_s, f.link, f.kind))
            if f.kind == "silent" and f.duration_s is not None:
                out.append((f.end_s, f.link, "resume"))
    return sorted(out, key=lambda e: e[0])


# --- the injector ----------------------------------------------------------------------------------------


def _empty_counts() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(("chunks_in", "bytes_in", "chunks_out", "bytes_out"), 0)
    out.update({kind: {"chunks": 0, "bytes": 0} for kind in BYTE_KINDS})
    return out


class FaultInjector:
    """The faults of one link: feed() the chunks each end sends, take() what the other end receives by now.

    Counts, per direction: chunks and bytes in and out, and per kind the chunks it touched and its bytes (drop:
    bytes lost; corrupt: bytes with a flipped bit; delay and stall: chunks and bytes held back; duplicate:
    the extra copies; cut: bytes lost to the cut). `queued_bytes` is what is held and not yet delivered, so
    bytes_out = bytes_in - drop - cut + duplicate - queued for every direction, at every moment.

    Each direction draws from its own random stream seeded by (seed, link, direction), and draws only while a
    random fault is active: a link with no active fault costs one comparison per chunk.
    """

    def __init__(self, link: str, faults: Sequence[LinkFault], seed: int, t0_ns: int = 0) -> None:
        self.link = link
        self.faults = tuple(f for f in faults if f.link == link and f.kind in BYTE_KINDS)
        self.t0_ns = t0_ns
        link_key = zlib.crc32(link.encode())
        self._rng = {d: np.random.default_rng([seed & 0xFFFF_FFFF, link_key, i]) for i, d in enumerate(DIRECTIONS)}
        self._queue: dict[str, deque[tuple[int, bytes]]] = {d: deque() for d in DIRECTIONS}
        self._last_ns = dict.fromkeys(DIRECTIONS, -(2**62))
        self.counts = {d: _empty_counts() for d in DIRECTIONS}

    def start(self, t0_ns: int) -> None:
        """Align the schedule: fault times count from t0_ns (the run's start) on the caller's clock."""
        self.t0_ns = t0_ns

    # --- the schedule ------------------------------------------------------------------------------------

    def _window_ns(self, f: LinkFault) -> tuple[int, int | None]:
        start = self.t0_ns + round(f.start_s * 1e9)
        return start, None if f.duration_s is None else start + round(f.duration_s * 1e9)

    def active(self, kind: str, direction: str, now_ns: int) -> list[LinkFault]:
        out = []
        for f in self.faults:
            if f.kind == kind and f.acts_on(direction):
                start, end = self._window_ns(f)
                if start <= now_ns and (end is None or now_ns < end):
                    out.append(f)
        return out

    def _stall_end(self, direction: str, t_ns: int) -> int | None:
        """When the stalls active at t_ns (and any they run into) end; None if none is active, -1 if never."""
        end: int | None = None
        moved = True
        while moved:
            moved = False
            for f in self.active("stall", direction, t_ns if end is None else end):
                _, e = self._window_ns(f)
                if e is None:
                    return -1
                if end is None or e > end:
                    end, moved = e, True
        return end

    def cut_windows_ns(self) -> list[tuple[int, int | None]]:
        """(start, end) of every cut on this link (end None: never restored), for a proxy that closes TCP."""
        return [self._window_ns(f) for f in self.faults if f.kind == "cut"]

    # --- the byte stream ---------------------------------------------------------------------------------

    def feed(self, now_ns: int, direction: str, data: bytes) -> None:
        """One chunk sent at now_ns in a direction ("up" board -> host, "down" host -> board)."""
        if not data:
            return
        c = self.counts[direction]
        c["chunks_in"] += 1
        c["bytes_in"] += len(data)
        if not self.faults:
            self._enqueue(direction, now_ns, bytes(data))
            return
        if self.active("cut", direction, now_ns):
            self._lost("cut", direction, len(data))
            return
        rng = self._rng[direction]
        out = bytes(data)
        drops, corrupts = self.active("drop", direction, now_ns), self.active("corrupt", direction, now_ns)
        if drops or corrupts:
            buf = np.frombuffer(out, dtype=np.uint8)
            for f in drops:
                keep = rng.random(len(buf)) >= float(f.arg or 0.0)
                if not keep.all():
                    self._lost("drop", direction, int(len(buf) - keep.sum()))
                    buf = buf[keep]
            for f in corrupts:
                hit = np.flatnonzero(rng.random(len(buf)) < float(f.arg or 0.0))
                if len(hit):
                    buf = buf.copy()
                    buf[hit] ^= (np.uint8(1) << rng.integers(0, 8, len(hit)).astype(np.uint8))
                    c["corrupt"]["chunks"] += 1
                    c["corrupt"]["bytes"] += len(hit)
            if not len(buf):
                return
            out = buf.tobytes()
        copies = 1
        for f in self.active("duplicate", direction, now_ns):
            if rng.random() < float(f.arg or 0.0):
                copies += 1
                c["duplicate"]["chunks"] += 1
                c["duplicate"]["bytes"] += len(out)
        deliver_ns = now_ns
        for f in self.active("delay", direction, now_ns):
            deliver_ns += round(float(f.arg or 0.0) * 1e9)
            c["delay"]["chunks"] += 1
            c["delay"]["bytes"] += len(out)
        if self.active("stall", direction, now_ns):
            c["stall"]["chunks"] += 1
            c["stall"]["bytes"] += len(out)
        for _ in range(copies):
            self._enqueue(direction, deliver_ns, out)

    def _lost(self, kind: str, direction: str, n: int) -> None:
        self.counts[direction][kind]["chunks"] += 1
        self.counts[direction][kind]["bytes"] += n

    def _enqueue(self, direction: str, deliver_ns: int, data: bytes) -> None:
        # A byte stream keeps its order: a chunk never overtakes one sent before it.
        deliver_ns = max(deliver_ns, self._last_ns[direction])
        self._last_ns[direction] = deliver_ns
        self._queue[direction].append((deliver_ns, data))

    def take_chunks(self, now_ns: int, direction: str) -> list[bytes]:
        """The chunks delivered by now_ns, in order (each as it was sent: a datagram, an RTU request)."""
        queue = self._queue[direction]
        if not queue or queue[0][0] > now_ns:
            return []
        if self.faults and self._stall_end(direction, now_ns) is not None:
            return []
        out = []
        cut = bool(self.faults) and bool(self.active("cut", direction, now_ns))
        while queue and queue[0][0] <= now_ns:
            _, data = queue.popleft()
            if cut:
                self._lost("cut", direction, len(data))
            else:
                out.append(data)
        c = self.counts[direction]
        c["chunks_out"] += len(out)
        c["bytes_out"] += sum(len(d) for d in out)
        return out

    def take(self, now_ns: int, direction: str) -> bytes:
        """The bytes delivered by now_ns, run together (a byte stream)."""
        return b"".join(self.take_chunks(now_ns, direction))

    def next_ns(self, direction: str) -> int | None:
        """When take() next has something to deliver (None: nothing held); a proxy sleeps until then."""
        queue = self._queue[direction]
        if not queue:
            return None
        t = queue[0][0]
        end = self._stall_end(direction, t) if self.faults else None
        if end == -1:
            return None
        return t if end is None else max(t, end)

    def discard(self, kind: str = "cut") -> None:
        """Everything held is lost (a TCP connection closed under it), counted under kind."""
        for d in DIRECTIONS:
            while self._queue[d]:
                self._lost(kind, d, len(self._queue[d].popleft()[1]))

    def summary(self) -> dict[str, Any]:
        """Counts per direction for summary.json, beside the link's own counters (see the class docstring)."""
        out: dict[str, Any] = {}
        for d in DIRECTIONS:
            c = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.counts[d].items()}
            c["queued_bytes"] = sum(len(b) for _, b in self._queue[d])
            out[d] = c
        return out


# --- virtual time: the injector between the host and an in-process board -----------------------------


class FaultyTransport:
    """The host's end of an in-process byte link with faults: writes go down through the injector, reads come up.

    Wraps the host end of a BytePipe (virtual time); held bytes are released by the next read, write or
    flush, which the host loop calls every step.
    """

    def __init__(self, inner: Any, injector: FaultInjector, clock_ns: Callable[[], int]) -> None:
        self.inner, self.injector, self.clock_ns = inner, injector, clock_ns
        self.is_datagram = bool(getattr(inner, "is_datagram", False))

    @property
    def tx_dropped_bytes(self) -> int:
        return int(getattr(self.inner, "tx_dropped_bytes", 0))

    def _release_down(self, now_ns: int) -> None:
        for chunk in self.injector.take_chunks(now_ns, "down"):
            self.inner.write(chunk)

    def write(self, data: bytes) -> None:
        now = self.clock_ns()
        self.injector.feed(now, "down", data)
        self._release_down(now)

    def flush(self) -> None:
        self._release_down(self.clock_ns())
        self.inner.flush()

    def read_available(self) -> bytes:
        now = self.clock_ns()
        self._release_down(now)
        self.injector.feed(now, "up", self.inner.read_available())
        return self.injector.take(now, "up")

    def fileno(self) -> int:
        return int(self.inner.fileno())

    def close(self) -> None:
        self.inner.close()


class FaultyModbusBoard:
    """An in-process Modbus RTU board behind a faulty line: handle_rtu() as the board's, faults applied both ways.

    A request held back (delay, stall) reaches the board at a later request and its reply comes back run
    together with that request's reply (a late reply); a dropped or corrupted request or reply gives None or
    bytes that fail the CRC; a duplicated reply comes twice. Attribute reads fall through to the board.
    """

    def __init__(self, board: Any, injector: FaultInjector, clock_ns: Callable[[], int]) -> None:
        self.board, self.injector, self.clock_ns = board, injector, clock_ns

    def handle_rtu(self, adu: bytes, device_id: int) -> bytes | None:
        now = self.clock_ns()
        self.injector.feed(now, "down", adu)
        for request in self.injector.take_chunks(now, "down"):
            reply = self.board.handle_rtu(request, device_id)
            if reply:
                self.injector.feed(now, "up", reply)
        return self.injector.take(now, "up") or None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.board, name)


__all__ = ["BOARD_KINDS", "BYTE_KINDS", "KINDS", "FaultInjector", "FaultyModbusBoard", "FaultyTransport",
           "LinkFault", "board_events", "check_links", "parse_faults"]
