"""The settings a run is configured with: the project (convcheck.settings.project: where its
files are, which models it declares) and the four settings files, one module each: profiles,
tolerances, targets and expected failures.

Each file is the package's default (convcheck/defaults/) extended by the project's own
(convcheck.settings.project says how they merge). Every mistake in these files is a ConfigError
naming the file and the key, raised at start-up, so that a typo never silently falls back to a
default. Imports no framework (an import-linter contract): validating a project's files stays
cheap. Every public name is importable from here.
"""
from convcheck.settings.expected_failures import ExpectedFailure, load_expected_failures
from convcheck.settings.files import ConfigError
from convcheck.settings.profiles import (
                                         ATTACK_PARAMS,
                                         ATTACKS,
                                         MAX_NEIGHBOURS,
                                         HyperParams,
                                         Profile,
                                         get_profile,
                                         load_profiles,
)
from convcheck.settings.targets import (
                                         COREML_CONVERT_TO,
                                         COREML_DEPLOYMENT_TARGETS,
                                         COREML_PRECISIONS,
                                         Target,
                                         load_targets,
                                         select_targets,
)
from convcheck.settings.tolerances import (
                                         MATCH_KEYS,
                                         TOLERANCE_KEYS,
                                         Override,
                                         Tolerances,
                                         check_implied_bounds,
                                         load_tolerances,
)

__all__ = ["ATTACKS", "ATTACK_PARAMS", "COREML_CONVERT_TO", "COREML_DEPLOYMENT_TARGETS",
           "COREML_PRECISIONS", "ConfigError", "ExpectedFailure", "HyperParams", "MATCH_KEYS",
           "MAX_NEIGHBOURS", "Override", "Profile", "TOLERANCE_KEYS", "Target", "Tolerances",
           "check_implied_bounds", "get_profile", "load_expected_failures", "load_profiles",
           "load_targets", "load_tolerances", "select_targets"]
