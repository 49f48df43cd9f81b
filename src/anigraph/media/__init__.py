"""The conversion engine: safe open, probe, segment decode, GIF/WebP encode. PyAV only.

This package imports nothing of the service; the service calls :func:`animate` and :func:`probe`,
through :mod:`anigraph.media.child` (a child process with a deadline) wherever the input is
untrusted.
"""
