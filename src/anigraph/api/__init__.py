"""The protocol layer of the Tencent-compatible API, independent of any HTTP framework.

- ``errors``: API errors with Tencent ``Code`` values (spec 7.4).
- ``envelope``: the ``{"Response": ...}`` wire shape and its exact Content-Type (spec 1.6).
- ``signing``: server-side verification of TC3-HMAC-SHA256 and legacy v1 signatures (spec 1.2-1.4).
- ``params``: rebuilding flattened parameters and a small schema to coerce and validate them (1.5).
"""
