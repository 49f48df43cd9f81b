"""Use cases of the service: no HTTP, no SQL strings. Each function takes the ``Context``."""
