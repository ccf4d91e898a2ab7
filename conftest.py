"""Root conftest: load the harness's pytest plugin (markers, --stack/--seed, the stack fixture)."""

pytest_plugins = ["harness.pytest_plugin"]
