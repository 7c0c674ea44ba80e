"""Property-based checks: Hypothesis strategies for a model's input domain (strategies) and the
properties an original and its conversion must share on drawn inputs (properties)."""
