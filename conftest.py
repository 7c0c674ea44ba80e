"""Root of the conformance suite: the pytest plugins in fixtures/ do the work."""

pytest_plugins = ["fixtures.options", "fixtures.zoo", "fixtures.benchmarks",
                  "fixtures.hypothesis"]
