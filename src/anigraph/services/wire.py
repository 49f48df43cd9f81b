"""Old home of :mod:`anigraph.domain.wire`, kept while modules of another branch still import it.

Remove once nothing imports ``anigraph.services.wire`` (``grep -rn services.wire src``).
"""

from anigraph.domain.wire import iso as iso
from anigraph.domain.wire import new_file_id as new_file_id
from anigraph.domain.wire import new_pull_task_id as new_pull_task_id
from anigraph.domain.wire import new_task_id as new_task_id
from anigraph.domain.wire import parse_iso as parse_iso
