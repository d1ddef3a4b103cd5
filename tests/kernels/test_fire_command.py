"""The fire command's request, compiled (hil.ext.fire_command), against its plain twin (hil.ext.reference
.fire_command: the Python it replaced on the fire path): the same bytes for every aim, None for every aim that
cannot be sent, whatever the floats (ties, a turn's edge, negative angles, NaN, infinities, the limits)."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hil.drivers.launcher_link import FIRE_EL_MAX_CDEG, FIRE_EL_MIN_CDEG, RANGE_M_MAX
from hil.drivers.registers import FIRE_BLOCK
from hil.ext.fire_command import fire_request
from hil.ext.reference import fire_command as reference

# angles whose centidegrees are exact ties, a turn's edge from both sides, and plain floats of every size
ANGLES = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-72000, 72000).map(lambda c: math.radians((c + 0.5) / 100)),
                   st.sampled_from([0.0, -0.0, 2 * math.pi, -2 * math.pi, math.nextafter(2 * math.pi, 0), -1e-300,
                                    math.pi / 2, math.radians(90.005), 1e20]))
AMOUNTS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 70000).map(lambda v: v + 0.5),
                    st.sampled_from([0.0, -0.0, 65535.0, 65535.5, 65535.49, 655.35, 655.355, -0.5, -0.49]))


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 2**40), ANGLES, ANGLES, AMOUNTS, AMOUNTS, st.integers(1, 0xFFFF))
@example(17, 1.0, 0.2, 9000.0, 12.5, 3)
def test_the_request_is_the_python_one_byte_for_byte(track_id: int, az: float, el: float, rng: float, tgo: float,
                                                     seq: int) -> None:
    limits = (FIRE_BLOCK, FIRE_EL_MIN_CDEG, FIRE_EL_MAX_CDEG, RANGE_M_MAX)
    assert fire_request(track_id, az, el, rng, tgo, seq, *limits) == \
        reference.fire_request(track_id, az, el, rng, tgo, seq, *limits)
