"""Old home of :mod:`anigraph.context`, kept while modules of another branch still import it.

Remove once nothing imports ``anigraph.services.context`` (``grep -rn services.context src``).
"""

from anigraph.context import URL_KEYS as URL_KEYS
from anigraph.context import Context as Context
from anigraph.context import utc_now as utc_now
