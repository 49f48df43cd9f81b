"""Starting event notification in a process: the hooks that write events, and PUSH delivery.

One call, so that the server (and later a worker process) wires everything the same way.
"""

from __future__ import annotations

from anigraph.context import Context
from anigraph.metrics import Metrics
from anigraph.notify.dispatch import EventDispatcher
from anigraph.notify.procedure_events import install_hooks


def start_notifications(ctx: Context, metrics: Metrics | None = None) -> EventDispatcher:
    """Install the ProcedureStateChanged hooks bound to ``ctx`` and start the dispatcher.

    Call ``stop()`` on the result at shutdown, after the workers have drained, so that the
    events of their last tasks are at least in the outbox (they are sent at the next start
    if the dispatcher stops first).
    """
    install_hooks(ctx)
    dispatcher = EventDispatcher(ctx, metrics)
    dispatcher.start()
    return dispatcher
