"""convcheck: does a converted deep-learning model still behave like the one that was trained?

Pure logic lives here (data, training, caching, conversion, running, metrics, reports), free of
pytest; the pytest layer is in fixtures/ and tests_conformance/.
"""
