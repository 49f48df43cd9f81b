"""Old home of :mod:`anigraph.media.child`, kept while the runner of another branch imports it.

Remove once nothing imports ``anigraph.jobs.child`` (``grep -rn jobs.child src``).
"""

from anigraph.media.child import Cancel as Cancel
from anigraph.media.child import Cancelled as Cancelled
from anigraph.media.child import JobFunction as JobFunction
from anigraph.media.child import animate_job as animate_job
from anigraph.media.child import run_job as run_job
