"""The locustfile: ``python -m locust -f harness/load/locustfile.py -H <gateway URL> ...``.

``harness load`` builds this command for you; running Locust by hand works the same way. What is
decided before this file is imported comes from the environment:

- ``LOAD_MODE=follow`` (default): ``InteractiveUser`` and ``BatchUser`` (4 : 1) submit and follow
  every evaluation to its end; ``LOAD_MODE=submit``: ``SubmitOnlyUser`` submits without following;
- ``LOAD_SHAPE=step``: the step load of ``harness.load.shapes.StepLoadShape``; unset: Locust's
  constant ``-u``/``-r``;
- ``LOAD_ROWS_DIR=<folder>``: write every request as a JSON line into that folder (one file per
  Locust process); unset: Locust's own statistics only;
- ``LIVE_MAIN_REDIS_URL``, ``LIVE_CELERY_BROKER_URL`` (and ``LIVE_CELERY_QUEUES``): where the web
  UI's "Both queues" tab reads both queues (``harness.load.webui``).

The harness's options (``--route``, ``--think-time``, ``--e2e-timeout``, ``--batch-size``,
``--seed``, ``--steps``, ``--output-cap``) are added to Locust's parser: they are accepted on the
command line (``locust --help`` does not list them; the README's "Load" section does), appear in the web UI's
start form under "Custom parameters", and a master forwards them to its workers.
"""

from __future__ import annotations

import os
from typing import Any

from locust import events

from harness.load.config import ENV_MODE, ENV_SHAPE, MODES, SHAPES
from harness.load.users import add_arguments
from harness.load.webui import install as install_live_tab

_mode = os.environ.get(ENV_MODE) or "follow"
_shape = os.environ.get(ENV_SHAPE) or ""
if _mode not in MODES:
    raise SystemExit(f"{ENV_MODE}={_mode!r}: expected one of {list(MODES)}")
if _shape and _shape not in SHAPES:
    raise SystemExit(f"{ENV_SHAPE}={_shape!r}: expected one of {list(SHAPES)} or unset")

# Locust runs every non-abstract User and the LoadTestShape it finds in this module's namespace,
# so the mode and the shape decide what is imported here.
if _mode == "submit":
    from harness.load.users import SubmitOnlyUser  # noqa: F401
else:
    from harness.load.users import BatchUser, InteractiveUser  # noqa: F401
if _shape == "step":
    from harness.load.shapes import StepLoadShape  # noqa: F401


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _install_live_tab(environment: Any, **_: Any) -> None:
    install_live_tab(environment)  # the web UI's "Both queues" tab (harness.load.webui)
