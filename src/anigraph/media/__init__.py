"""The conversion engine: safe open, probe, segment decode, GIF/WebP encode. PyAV only.

This package imports nothing of the service; the service calls :func:`animate` and :func:`probe`.
"""
