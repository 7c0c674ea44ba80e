"""convcheck: does a converted deep-learning model still behave like the one that was trained?

The public API for a project's own declarations (cheap to import: no framework, no numpy):

- ``declare_model(name, **fields)``: a model, with the fields of a ``[model.NAME]`` table;
- ``register_dataset``, ``register_exporter``, ``register_runtime``: the open registries;
- the conformance tests themselves are ``convcheck.suite`` (``from convcheck.suite import *``
  in a test module collects every family).
"""
from convcheck.declarations.registry import (
                                declare_model,
                                register_dataset,
                                register_exporter,
                                register_runtime,
)

__all__ = ["declare_model", "register_dataset", "register_exporter", "register_runtime"]
__version__ = "0.2.0"
