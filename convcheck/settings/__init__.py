"""The settings a run is configured with, one module per file: profiles, tolerances, targets and
expected failures (each the package's default extended by the project's own, read and checked
by convcheck.settings.files). Imports no framework: validating a project's files stays cheap.
`convcheck.config` re-exports every public name."""
