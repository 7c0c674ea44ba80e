"""The reference project: the zoo is declared in models/ and configured in pyproject.toml's
[tool.convcheck]; the conformance suite itself, the known-divergence reproducers included, comes
from the installed convcheck plugin."""
