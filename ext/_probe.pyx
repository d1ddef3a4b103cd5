# cython: language_level=3
"""Build probe: proves the extension build and the hil.ext mapping work."""

def add(double a, double b):
    return a + b
