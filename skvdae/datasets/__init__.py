"""Generators of the manifolds used to test, demonstrate and benchmark skvdae."""

from ._manifolds import loop_arc_length, make_circle, make_loop

__all__ = ["loop_arc_length", "make_circle", "make_loop"]
