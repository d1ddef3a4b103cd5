"""The plant's side of an engagement: interceptor fly-out, terminal seeker on truth, and kill assessment.

A test-bench model, not a claim about any real weapon. It is the truth side, not the system under test: it
learns of a round only when a launcher board launched it, and knows only what the fire command carried on the
wire (aim point, time to go). The model, in order (docs/ENGAGEMENT.md has the numbers):

- Launch: the round leaves the launcher launch_delay_s after the board's launch and flies at a constant
  interceptor_speed_mps. Mid-course it steers toward the commanded aim point (proportional navigation on the
  fixed point, lateral acceleration limited to interceptor_max_g) and knows nothing of truth; once the aim point
  is behind it, it flies straight on.
- Search: the seeker looks from when the round is within seeker_range_m of its aim point until it has flown
  seeker_range_m past it. At each step its basket is every live true object, hostile, friendly or neutral
  alike, at most seeker_range_m from the round and within seeker_half_angle_deg of its boresight (the round's
  velocity). Rule: the object nearest the boresight (smallest off-boresight angle; ties: the lower truth row).
- Lock: the pick is final. The round never re-selects, and homes on it by proportional navigation. An acquired
  object that leaves truth (killed by another round, impact) is a lost lock: the round self-destructs there.
- End: at its first closest approach to what it acquired the round detonates; inside lethal_radius_m it kills
  with probability pk, otherwise it is a miss. The draw is seeded by the run's seed, the object and how many rounds
  detonated on it before: the n-th round to reach an object meets the same luck whenever it arrives, so rounds
  that reach different objects in another order (real time moves launches) do not trade outcomes. Nothing
  acquired by the end of the search window: it self-destructs there. Any round still flying at max_tof_s after
  launch self-destructs. Every detonation point (kill, miss, self-destruct) is checked against the no-fire zones.

A kill ends the acquired object's truth whatever its allegiance: a friendly inside the basket can die.

The rounds fly in a kernel, hil.ext.engagement's Flyout: every step of every round in C, handing back to this
module only what it keeps (a search whose basket the kernel cannot rule out empty, a detonation with its kill
draw, a self-destruct, the no-fire zones). EngagementModel(..., compiled=False) flies them here instead, one
round at a time in _advance: the plain Python reference. The kernel flies bit for bit as it does; only its bound
on the next search after an empty basket is rounded its own way, and that bound keeps a margin far above
rounding, so rounds acquire, detonate and end alike (tests/plant/test_engagement_kernel.py compares them).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hil.ext.engagement import DETONATE, FLOWN, SEARCH, Flyout
from hil.ext.firecontrol_types import LauncherSpec, NoFireZone
from hil.geo import STANDARD_GRAVITY, FloatArray
from hil.scenario import ALLEGIANCES, TRUTH_STEP_S, Truth

STEP_S = 0.01
NAVIGATION_CONSTANT = 4.0
KILL_DRAW_STREAM = 7  # keeps the kill draws apart from the plant's other seeded streams
RESULTS = ("flying", "killed", "missed", "self_destruct")

Vec = tuple[float, float, float]


@dataclass(slots=True)
class Interceptor:
    """One round: what the wire commanded, how it flies, what its seeker took and how it ended."""

    ident: int
    launcher: int  # index into the scenario's launchers
    seq: int  # the fire command's sequence number
    track_id: int  # the track the fire command named (from the wire)
    aim_enu: Vec  # the intercept point the fire command carried
    tgo_s: float  # the commanded time to go (nan: the wire carried none)
    launch_s: float  # the board's launch
    fly_s: float  # the motor lights: launch + launch_delay_s
    pos: Vec
    vel: Vec
    speed_mps: float
    max_acc_mps2: float
    lethal_radius_m: float
    pk: float
    max_tof_s: float
    seeker_range_m: float
    seeker_half_angle_rad: float  # the basket: a cone of this half-angle around the velocity
    acquired: int = -1  # truth row the seeker locked on (-1: nothing)
    acquired_allegiance: str = ""
    acquire_s: float = math.nan
    acquire_enu: Vec | None = None  # the round's position at acquisition
    acquire_boresight: Vec | None = None  # the round's unit velocity at acquisition
    basket_at_acquisition: tuple[int, ...] = ()  # every truth row in the basket when it locked, picked one included
    result: str = "flying"  # flying | killed | missed | self_destruct
    miss_distance_m: float = math.inf  # closest approach to the acquired object (inf: nothing acquired)
    detonation_enu: Vec | None = None
    end_s: float = math.nan
    no_fire_zone: str = ""  # the zone the detonation point is inside ("" none)
    passed_aim: bool = False
    past_aim_m: float = 0.0  # path flown since the aim point went behind the round
    closing: bool = False  # the range to the acquired object has been seen shrinking
    # no object can be in the seeker's reach before this time (a bound the model keeps to skip empty searches)
    search_from_s: float = -math.inf

    @property
    def target(self) -> int:
        """The acquired truth row (the name hil.runtime used before the seeker existed)."""
        return self.acquired

    def record(self) -> dict[str, Any]:
        """The round as plain JSON-able data (non-finite numbers as None)."""

        def num(x: float, nd: int = 3) -> float | None:
            return round(x, nd) if math.isfinite(x) else None

        def vec(v: Vec | None) -> list[float] | None:
            return None if v is None else [round(c, 2) for c in v]

        return {
            "launcher": self.launcher, "seq": self.seq, "track_id": self.track_id, "aim_enu": vec(self.aim_enu),
            "tgo_s": num(self.tgo_s), "launch_s": num(self.launch_s), "acquired": self.acquired,
            "acquired_allegiance": self.acquired_allegiance, "acquire_s": num(self.acquire_s),
            "basket": list(self.basket_at_acquisition), "result": self.result,
            "miss_distance_m": num(self.miss_distance_m, 2), "detonation_enu": vec(self.detonation_enu),
            "end_s": num(self.end_s), "no_fire_zone": self.no_fire_zone,
        }


@dataclass
class EngagementEvent:
    t_s: float
    kind: str  # kill | miss | self_destruct
    interceptor: Interceptor


def zone_containing(point: Vec, zones: tuple[NoFireZone, ...]) -> str:
    """Name of the first no-fire zone (vertical cylinder) holding point, "" if none."""
    x, y, z = point
    for zone in zones:
        if math.hypot(x - zone.centre[0], y - zone.centre[1]) <= zone.radius_m and zone.z_min_m <= z <= zone.z_max_m:
            return zone.name
    return ""


def seeker_basket(pos: Vec, boresight: Vec, objects: FloatArray, range_m: float, half_angle_rad: float
                  ) -> tuple[np.ndarray, FloatArray]:
    """Which objects (positions [n, 3]) the seeker's basket holds, and each one's off-boresight angle (rad).

    boresight is a unit vector. NaN positions (not in truth) are never in the basket.
    """
    inside, angle, _ = _basket(pos, boresight, objects, range_m, half_angle_rad)
    return inside, angle


def _basket(pos: Vec, boresight: Vec, objects: FloatArray, range_m: float, half_angle_rad: float
            ) -> tuple[np.ndarray, FloatArray, FloatArray]:
    """seeker_basket, and each object's distance from the round."""
    rel = objects - np.asarray(pos)
    dist = np.sqrt(np.einsum("ij,ij->i", rel, rel))
    cos = (rel @ np.asarray(boresight)) / np.maximum(dist, 1e-9)
    angle = np.arccos(np.clip(cos, -1.0, 1.0))
    return (dist <= range_m) & (cos >= math.cos(half_angle_rad)), angle, dist


@dataclass
class EngagementModel:
    truth: Truth
    launchers: tuple[LauncherSpec, ...]
    seed: int
    no_fire_zones: tuple[NoFireZone, ...] = ()
    flying: list[Interceptor] = field(default_factory=list)
    finished: list[Interceptor] = field(default_factory=list)
    t_s: float = 0.0
    compiled: bool = True  # fly the rounds in hil.ext.engagement; False: the Python reference (_advance)

    def __post_init__(self) -> None:
        self._detonations: Counter[int] = Counter()  # rounds that detonated on each truth row, for the kill draw
        self._next_id = 1
        self._allegiance = [spec.allegiance for spec in self.truth.scenario.targets]
        truth = self.truth
        self._flyout = Flyout(truth.states, truth.start_s, truth.end_s, TRUTH_STEP_S, STEP_S, NAVIGATION_CONSTANT,
                              self.t_s)
        # the kernel rules out empty baskets itself, unless a subclass searches its own way (a test searches at
        # every step): then every search the window asks for comes here
        own = EngagementModel
        if self.compiled and type(self)._search is own._search \
                and type(self)._nothing_in_reach_until is own._nothing_in_reach_until:
            self._flyout.screen_searches = True
            self._flyout.max_speed_mps = truth.max_speed_mps

    def launch(self, t_s: float, launcher: int, track_id: int, aim_enu: FloatArray | Vec, tgo_s: float = math.nan,
               seq: int = 0) -> Interceptor:
        """A round the launcher board launched at t_s toward the aim point its fire command carried."""
        site = self.launchers[launcher]
        ax, ay, az = (float(c) for c in aim_enu)
        px, py, pz = (float(c) for c in site.position)
        dx, dy, dz = ax - px, ay - py, az - pz
        norm = max(math.sqrt(dx * dx + dy * dy + dz * dz), 1e-9)
        u = site.interceptor_speed_mps
        m = Interceptor(
            ident=self._next_id, launcher=launcher, seq=seq, track_id=track_id, aim_enu=(ax, ay, az),
            tgo_s=float(tgo_s), launch_s=t_s, fly_s=t_s + site.launch_delay_s, pos=(px, py, pz),
            vel=(dx / norm * u, dy / norm * u, dz / norm * u), speed_mps=u,
            max_acc_mps2=site.interceptor_max_g * STANDARD_GRAVITY, lethal_radius_m=site.lethal_radius_m, pk=site.pk,
            max_tof_s=site.max_tof_s, seeker_range_m=site.seeker_range_m,
            seeker_half_angle_rad=math.radians(site.seeker_half_angle_deg),
        )
        self._next_id += 1
        self.flying.append(m)
        if self.compiled:
            self._flyout.add(m.fly_s, m.launch_s, m.max_tof_s, m.speed_mps, m.max_acc_mps2, m.seeker_range_m,
                             m.seeker_half_angle_rad, m.pos, m.vel, m.aim_enu)
        return m

    def step(self, t_to: float) -> list[EngagementEvent]:
        """Fly every round to t_to in steps of STEP_S; kills end their object's truth."""
        if not self.compiled:
            return self._step_reference(t_to)
        events: list[EngagementEvent] = []
        fly = self._flyout
        fly.t_s = self.t_s
        while (what := fly.advance(t_to)) != FLOWN:
            fly.write_back(self.flying)  # the round's record as the reference would have it at this point
            i = fly.current
            m = self.flying[i]
            if what == SEARCH:
                self._search(m, fly.event_t_s, *m.pos, *m.vel)
                fly.searched(m.acquired, m.search_from_s)
                continue
            if what == DETONATE:
                events.append(self._detonate(m, fly.event_t_s, fly.event_tau_s, *fly.event_miss))
            else:
                events.append(self._finish(m, fly.event_t_s, "self_destruct", m.pos))
            fly.remove(i)
            del self.flying[i]
            self.finished.append(m)
        self.t_s = fly.t_s
        fly.write_back(self.flying)
        return events

    def _step_reference(self, t_to: float) -> list[EngagementEvent]:
        """step in plain Python, one round at a time (_advance): what the kernel must do bit for bit."""
        events: list[EngagementEvent] = []
        while self.t_s < t_to - 1e-9:
            # the last step lands on t_to exactly, so summed steps do not drift from the caller's clock
            t1 = t_to if t_to - self.t_s <= STEP_S + 1e-9 else self.t_s + STEP_S
            for m in list(self.flying):
                event = self._advance(m, self.t_s, t1)
                if event:
                    events.append(event)
                    self.flying.remove(m)
                    self.finished.append(m)
            self.t_s = t1
        self.t_s = max(self.t_s, t_to)
        return events

    def counts(self) -> dict[str, Any]:
        """What the plant saw, for summary.json's "plant": counted from what each round acquired, never from
        which track it was fired at."""
        rounds = self.finished + self.flying
        by_result: Counter[str] = Counter()
        acquired: Counter[str] = Counter()
        killed: Counter[str] = Counter()
        per_target: Counter[int] = Counter()
        in_basket: Counter[str] = Counter()
        nfz_detonations = nfz_kills = nothing_acquired = 0
        allegiance = self._allegiance
        for m in rounds:  # one pass: the run's journal counts a long run's thousands of rounds every few seconds
            result = m.result
            by_result[result] += 1
            if m.acquired >= 0:
                acquired[m.acquired_allegiance] += 1
                per_target[m.acquired] += 1
            elif result != "flying":
                nothing_acquired += 1
            if result == "killed":
                killed[m.acquired_allegiance] += 1
            for row in set(m.basket_at_acquisition):
                in_basket[allegiance[row]] += 1
            if m.no_fire_zone:
                nfz_detonations += 1
                nfz_kills += result == "killed"
        return {
            "rounds_launched": len(rounds),
            "by_result": {r: by_result.get(r, 0) for r in RESULTS},
            "acquired": {a: acquired.get(a, 0) for a in ALLEGIANCES},
            "killed": {a: killed.get(a, 0) for a in ALLEGIANCES},
            "friendly_acquired": acquired.get("friendly", 0),
            "neutral_acquired": acquired.get("neutral", 0),
            "friendly_killed": killed.get("friendly", 0),
            "neutral_killed": killed.get("neutral", 0),
            # rounds whose basket held a protected object when they locked, whatever they picked
            "protected_in_basket": in_basket.get("friendly", 0) + in_basket.get("neutral", 0),
            "nfz_detonations": nfz_detonations,
            "nfz_kills": nfz_kills,
            "nothing_acquired": nothing_acquired,
            "rounds_per_target": {str(row): n for row, n in sorted(per_target.items())},
            "max_rounds_per_target": max(per_target.values(), default=0),
        }

    # --- one round over one step -------------------------------------------------------------------

    def _advance(self, m: Interceptor, t0: float, t1: float) -> EngagementEvent | None:
        if t1 <= m.fly_s:
            return None
        ts = max(t0, m.fly_s)  # the motor may light inside this step
        t_end = min(t1, m.launch_s + m.max_tof_s)
        dt = t_end - ts
        # plain floats: a handful of rounds stepped at 100 Hz, where small numpy calls cost more than math
        px, py, pz = m.pos
        vx, vy, vz = m.vel
        if dt <= 0.0:
            return self._finish(m, ts, "self_destruct", m.pos)
        if m.acquired < 0 and ts >= m.search_from_s and self._searching(m, px, py, pz, vx, vy, vz):
            self._search(m, ts, px, py, pz, vx, vy, vz)
        if m.acquired >= 0:
            row = m.acquired
            if not self.truth.start_s[row] <= ts < self.truth.end_s[row]:
                return self._finish(m, ts, "self_destruct", m.pos)  # lost lock: no re-selection
            tx, ty, tz, tvx, tvy, tvz = self.truth.state_tuple(row, ts)
            rx, ry, rz, wx, wy, wz = tx - px, ty - py, tz - pz, tvx - vx, tvy - vy, tvz - vz
            m.miss_distance_m = min(m.miss_distance_m, math.sqrt(rx * rx + ry * ry + rz * rz))
            vv = wx * wx + wy * wy + wz * wz
            rv = rx * wx + ry * wy + rz * wz
            if rv < 0.0 and vv > 0.0:
                tau = -rv / vv
                if tau < dt:  # the closest approach falls in this step (relative motion taken as straight)
                    return self._detonate(m, ts, tau, rx + wx * tau, ry + wy * tau, rz + wz * tau)
                m.closing = True
            elif m.closing:
                return self._detonate(m, ts, 0.0, rx, ry, rz)  # the range opened at the step's start
            gx, gy, gz = self._guidance(m, rx, ry, rz, wx, wy, wz, vx, vy, vz)
        else:
            rx, ry, rz = m.aim_enu[0] - px, m.aim_enu[1] - py, m.aim_enu[2] - pz
            if not m.passed_aim and rx * vx + ry * vy + rz * vz <= 0.0:
                m.passed_aim = True
            if m.passed_aim:
                # the aim is behind: fly straight on (steering back at a point would only circle it)
                gx = gy = gz = 0.0
                m.past_aim_m += m.speed_mps * dt
            else:
                gx, gy, gz = self._guidance(m, rx, ry, rz, -vx, -vy, -vz, vx, vy, vz)
        vx, vy, vz = vx + gx * dt, vy + gy * dt, vz + gz * dt
        scale = m.speed_mps / max(math.sqrt(vx * vx + vy * vy + vz * vz), 1e-9)
        m.vel = (vx * scale, vy * scale, vz * scale)
        m.pos = (px + m.vel[0] * dt, py + m.vel[1] * dt, pz + m.vel[2] * dt)
        if m.acquired < 0 and m.passed_aim and m.past_aim_m >= m.seeker_range_m:
            return self._finish(m, t_end, "self_destruct", m.pos)  # the search window closed empty
        if t_end >= m.launch_s + m.max_tof_s:
            return self._finish(m, t_end, "self_destruct", m.pos)
        return None

    @staticmethod
    def _searching(m: Interceptor, px: float, py: float, pz: float, vx: float, vy: float, vz: float) -> bool:
        """Inside the search window: within seeker range of the aim point, up to seeker range past it."""
        if m.passed_aim:
            return m.past_aim_m < m.seeker_range_m
        rx, ry, rz = m.aim_enu[0] - px, m.aim_enu[1] - py, m.aim_enu[2] - pz
        return rx * rx + ry * ry + rz * rz <= m.seeker_range_m * m.seeker_range_m

    def _search(self, m: Interceptor, t_s: float, px: float, py: float, pz: float, vx: float, vy: float,
                vz: float) -> None:
        live = self.truth.alive(t_s)
        if not len(live):
            later = self.truth.start_s[self.truth.start_s > t_s]
            m.search_from_s = float(later.min()) if len(later) else math.inf
            return
        objects = self.truth.states_when(live, t_s)[:, :3]
        boresight = (vx / m.speed_mps, vy / m.speed_mps, vz / m.speed_mps)
        inside, angle, dist = _basket((px, py, pz), boresight, objects, m.seeker_range_m, m.seeker_half_angle_rad)
        if not inside.any():
            m.search_from_s = self._nothing_in_reach_until(m, t_s, dist)
            return
        j = int(np.argmin(np.where(inside, angle, np.inf)))  # nearest the boresight; ties: lower row
        m.acquired = int(live[j])
        m.acquired_allegiance = self._allegiance[m.acquired]
        m.acquire_s, m.acquire_enu, m.acquire_boresight = t_s, (px, py, pz), boresight
        m.basket_at_acquisition = tuple(int(r) for r in live[inside])

    def _nothing_in_reach_until(self, m: Interceptor, t_s: float, dist: FloatArray) -> float:
        """With no live object in the basket at t_s (dist: each one's distance from the round): a time before which
        none can come within the seeker's range. The gap to the nearest closes at most at the round's speed plus
        the fastest truth (a little more, for rounding); an object not yet in truth may appear when it starts."""
        nearest = float(dist.min())
        if not math.isfinite(nearest):
            return t_s  # an object between samples as it enters truth has no position yet: no bound
        closing = (m.speed_mps + self.truth.max_speed_mps) * 1.001 + 1.0
        until = t_s + (nearest - m.seeker_range_m - 1.0) / closing
        later = self.truth.start_s[self.truth.start_s > t_s]
        return min(until, float(later.min())) if len(later) else until

    @staticmethod
    def _guidance(m: Interceptor, rx: float, ry: float, rz: float, wx: float, wy: float, wz: float,
                  vx: float, vy: float, vz: float) -> tuple[float, float, float]:
        """Proportional navigation on the line of sight, limited to the airframe's lateral acceleration."""
        r2 = rx * rx + ry * ry + rz * rz
        if r2 < 1e-6:
            return 0.0, 0.0, 0.0
        # line-of-sight rate omega = r x w / |r|^2, commanded acceleration N * Vc * omega x v_hat
        ox, oy, oz = (ry * wz - rz * wy) / r2, (rz * wx - rx * wz) / r2, (rx * wy - ry * wx) / r2
        closing = -(rx * wx + ry * wy + rz * wz) / math.sqrt(r2)
        k = NAVIGATION_CONSTANT * max(closing, m.speed_mps * 0.5) / m.speed_mps
        ax, ay, az = k * (oy * vz - oz * vy), k * (oz * vx - ox * vz), k * (ox * vy - oy * vx)
        norm = math.sqrt(ax * ax + ay * ay + az * az)
        if norm > m.max_acc_mps2:
            ax, ay, az = ax * m.max_acc_mps2 / norm, ay * m.max_acc_mps2 / norm, az * m.max_acc_mps2 / norm
        return ax, ay, az

    def _detonate(self, m: Interceptor, t_s: float, tau: float, cx: float, cy: float, cz: float
                  ) -> EngagementEvent:
        """At the closest approach (tau into the step, miss vector c): a kill with pk inside the lethal radius."""
        miss = math.sqrt(cx * cx + cy * cy + cz * cz)
        m.miss_distance_m = min(m.miss_distance_m, miss)
        point = (m.pos[0] + m.vel[0] * tau, m.pos[1] + m.vel[1] * tau, m.pos[2] + m.vel[2] * tau)
        shot = self._detonations[m.acquired]
        self._detonations[m.acquired] += 1
        killed = miss <= m.lethal_radius_m and self._luck(m.acquired, shot) < m.pk
        return self._finish(m, t_s + tau, "killed" if killed else "missed", point)

    def _luck(self, row: int, shot: int) -> float:
        """The kill draw of the shot-th round (from 0) to detonate on truth row `row`: uniform in [0, 1)."""
        return float(np.random.default_rng((self.seed, KILL_DRAW_STREAM, row, shot)).random())

    def _finish(self, m: Interceptor, t_s: float, result: str, point: Vec) -> EngagementEvent:
        m.result, m.end_s, m.detonation_enu = result, t_s, point
        m.no_fire_zone = zone_containing(point, self.no_fire_zones)
        if result == "killed":
            self.truth.end(m.acquired, t_s, "killed")
        kind = {"killed": "kill", "missed": "miss"}.get(result, "self_destruct")
        return EngagementEvent(t_s=t_s, kind=kind, interceptor=m)
