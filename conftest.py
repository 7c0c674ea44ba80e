"""The reference project: the zoo is declared in models/ and configured in pyproject.toml's
[tool.convcheck]; the conformance suite itself comes from the installed convcheck plugin."""

pytest_plugins = ["fixtures.regressions"]
