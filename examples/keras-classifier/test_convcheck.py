"""Every convcheck property family, on this project's models (convcheck.toml)."""
from convcheck.suite import *  # noqa: F401,F403
