"""Root conftest. The harness's pytest plugin is not loaded here: pytest loads it through the package's
``pytest11`` entry point (``make venv`` installs the checkout), as for any installation of the harness."""
