"""``python -m system_under_test.legacy``: run one legacy worker (see worker.py for its env)."""

import logging

from system_under_test.legacy.worker import run_forever

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_forever()
