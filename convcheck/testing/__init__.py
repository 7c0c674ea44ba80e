"""Tools for testing convcheck itself: conversions known to be wrong (faults), with which every
check is shown to fail just over its tolerance and to pass just under it. Nothing in the package
imports this."""
