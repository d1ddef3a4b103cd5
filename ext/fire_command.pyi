"""Typed face of the compiled fire-command kernel (ext/fire_command.pyx); its plain-Python twin is
hil.ext.reference.fire_command."""

def fire_request(track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float, tgo_s: float, seq: int,
                 block_address: int, el_min_cdeg: int, el_max_cdeg: int, range_max_m: int) -> bytes | None:
    """The function-16 request PDU writing one fire block (FIRE_TRACK..FIRE_CHECK), or None when the aim cannot be
    sent."""
    ...
