"""The plant's side of an engagement: interceptor fly-out, terminal homing on truth, and kill assessment.

A test-bench model, not a claim about any real weapon: the interceptor is commanded toward the predicted
intercept point the host computed, flies at constant speed with a lateral-acceleration limit, switches to
proportional navigation on the nearest real target once it is within seeker range, and kills with
probability pk when its closest approach is inside the lethal radius. A track with no real target near
its aim point (a false track) therefore always misses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hil.geo import STANDARD_GRAVITY, FloatArray
from hil.scenario import LauncherSite, Truth

STEP_S = 0.01
SEEKER_RANGE_M = 8_000.0
NAVIGATION_CONSTANT = 4.0


@dataclass
class Interceptor:
    ident: int
    launcher: int
    track_id: int
    target: int  # truth row the seeker acquires (-1: nothing near the aim point)
    launch_s: float
    fly_s: float  # when the motor lights (launch + launch delay)
    aim: FloatArray
    pos: FloatArray
    vel: FloatArray
    speed: float
    max_acc: float
    lethal_radius_m: float
    pk: float
    max_tof_s: float
    homing: bool = False
    miss_distance_m: float = math.inf
    result: str = "flying"  # flying | killed | missed
    end_s: float = math.nan


@dataclass
class EngagementEvent:
    t_s: float
    kind: str  # kill | miss
    interceptor: Interceptor


@dataclass
class EngagementModel:
    truth: Truth
    launchers: tuple[LauncherSite, ...]
    seed: int
    flying: list[Interceptor] = field(default_factory=list)
    finished: list[Interceptor] = field(default_factory=list)
    t_s: float = 0.0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed + 7)
        self._next_id = 1

    def launch(self, t_s: float, launcher: int, track_id: int, aim: FloatArray) -> Interceptor:
        """A launch the launcher board confirmed: fly toward aim; the seeker takes the real target nearest it."""
        site = self.launchers[launcher]
        pos = np.array(site.position, dtype=np.float64)
        aim = np.asarray(aim, dtype=np.float64)
        live = self.truth.alive(t_s)
        target = -1
        if len(live):
            states = self.truth.states_at(live, np.full(len(live), t_s))
            # the seeker's acquisition basket: the object closest to the aim point's line of sight
            d = np.linalg.norm(states[:, :3] - aim, axis=1)
            j = int(np.argmin(d))
            if d[j] < SEEKER_RANGE_M:
                target = int(live[j])
        direction = aim - pos
        direction /= max(float(np.linalg.norm(direction)), 1e-9)
        interceptor = Interceptor(
            ident=self._next_id, launcher=launcher, track_id=track_id, target=target, launch_s=t_s,
            fly_s=t_s + site.launch_delay_s, aim=aim, pos=pos, vel=direction * site.interceptor_speed_mps,
            speed=site.interceptor_speed_mps, max_acc=site.interceptor_max_g * STANDARD_GRAVITY,
            lethal_radius_m=site.lethal_radius_m, pk=site.pk, max_tof_s=site.max_tof_s,
        )
        self._next_id += 1
        self.flying.append(interceptor)
        return interceptor

    def step(self, t_to: float) -> list[EngagementEvent]:
        """Fly every interceptor to t_to; kills end their target's truth."""
        events: list[EngagementEvent] = []
        while self.t_s < t_to - 1e-12:
            dt = min(STEP_S, t_to - self.t_s)
            t1 = self.t_s + dt
            for m in list(self.flying):
                event = self._advance(m, self.t_s, t1)
                if event:
                    events.append(event)
                    self.flying.remove(m)
                    self.finished.append(m)
            self.t_s = t1
        return events

    def _advance(self, m: Interceptor, t0: float, t1: float) -> EngagementEvent | None:
        if t1 <= m.fly_s:
            return None
        dt = t1 - max(t0, m.fly_s)
        # plain floats: a handful of interceptors stepped at 100 Hz, where small numpy calls cost more than math
        px, py, pz = m.pos.tolist()
        vx, vy, vz = m.vel.tolist()
        alive = m.target >= 0 and self.truth.start_s[m.target] <= t0 < self.truth.end_s[m.target]
        if alive:
            tx, ty, tz, tvx, tvy, tvz = self.truth.state_of(m.target, t0).tolist()
            rx, ry, rz, wx, wy, wz = tx - px, ty - py, tz - pz, tvx - vx, tvy - vy, tvz - vz
            dist = math.sqrt(rx * rx + ry * ry + rz * rz)
            m.homing = m.homing or dist < SEEKER_RANGE_M
            # closest approach within this step, relative motion taken as straight
            vv = wx * wx + wy * wy + wz * wz
            rv = rx * wx + ry * wy + rz * wz
            tau = min(max(-rv / vv, 0.0), dt) if vv > 0 else 0.0
            cx, cy, cz = rx + wx * tau, ry + wy * tau, rz + wz * tau
            m.miss_distance_m = min(m.miss_distance_m, math.sqrt(cx * cx + cy * cy + cz * cz))
            if m.homing and (m.miss_distance_m <= m.lethal_radius_m or (rv > 0 and dist < 200.0)):
                # at (or just past) the closest approach: assess
                killed = m.miss_distance_m <= m.lethal_radius_m and self.rng.random() < m.pk
                return self._finish(m, t0 + tau, killed)
        else:
            ax_, ay_, az_ = m.aim.tolist()
            rx, ry, rz, wx, wy, wz = ax_ - px, ay_ - py, az_ - pz, -vx, -vy, -vz
        gx, gy, gz = self._guidance(m, rx, ry, rz, wx, wy, wz, vx, vy, vz)
        vx, vy, vz = vx + gx * dt, vy + gy * dt, vz + gz * dt
        scale = m.speed / max(math.sqrt(vx * vx + vy * vy + vz * vz), 1e-9)
        vx, vy, vz = vx * scale, vy * scale, vz * scale
        m.vel = np.array([vx, vy, vz])
        m.pos = np.array([px + vx * dt, py + vy * dt, pz + vz * dt])
        if t1 - m.launch_s > m.max_tof_s:
            return self._finish(m, t1, False)
        return None

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
        k = NAVIGATION_CONSTANT * max(closing, m.speed * 0.5) / m.speed
        ax, ay, az = k * (oy * vz - oz * vy), k * (oz * vx - ox * vz), k * (ox * vy - oy * vx)
        norm = math.sqrt(ax * ax + ay * ay + az * az)
        if norm > m.max_acc:
            ax, ay, az = ax * m.max_acc / norm, ay * m.max_acc / norm, az * m.max_acc / norm
        return ax, ay, az

    def _finish(self, m: Interceptor, t_s: float, killed: bool) -> EngagementEvent:
        m.result, m.end_s = ("killed" if killed else "missed"), t_s
        if killed:
            self.truth.end(m.target, t_s, "killed")
        return EngagementEvent(t_s=t_s, kind="kill" if killed else "miss", interceptor=m)
