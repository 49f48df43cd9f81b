"""The one error type of a transfer: something the operator has to fix or decide."""

from __future__ import annotations


class TransferError(Exception):
    """Bad input, an unreachable endpoint, a target that is not empty, a failed copy.

    ``str()`` is one line saying what and where, fit to print as the command's only output;
    no traceback is needed to act on it.
    """
