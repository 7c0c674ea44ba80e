"""The session's work, memoized: the cases a run makes (cases), training (train), the on-disk
cache with its keys (cache), the builds (builds: originals, conversions, attacked models) and the
Workbench that makes each of them once (workbench). A script uses the Workbench as the plugin
does."""
