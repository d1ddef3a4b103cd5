"""The board side: the radar and launcher boards as Python, for the mock rig and the Raspberry Pi.

What runs on a Pi imports only the standard library, numpy, pyserial, pymodbus and, from hil, these
emulators, the wire formats they speak (hil.drivers.framing, asterix, modbus_rtu, registers, timesync) and
hil.errors, geo, units and procutil: never the scenario, the host, the plant or the compiled kernels.
firmware_stubs/rpi/bundle.py checks this before it copies the board side for a Pi.
"""
