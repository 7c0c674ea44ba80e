"""Shared by the project's own fault tests: the good conversions that faults are made from."""
import pytest

from convcheck.conversion.runner import ConversionError
from convcheck.plugin import state

FAULT_TARGET = "onnx"


@pytest.fixture(scope="session")
def good_conversion(bench):
    """good_conversion(model, framework): the session's good `onnx` conversion of an original."""

    def get(model: str, framework: str):
        if FAULT_TARGET not in bench.targets:
            pytest.skip(f"target {FAULT_TARGET} not selected (--convcheck-targets)")
        try:
            return bench.converted(model, framework, FAULT_TARGET, bench.profile.seeds[0])
        except ConversionError as e:
            pytest.fail(f"{model}-{framework}: the good conversion failed: {e}", pytrace=False)

    return get


@pytest.fixture(scope="session")
def control_passes():
    """control_passes(battery, case_id, verdicts): a good conversion passes every check of a
    fault battery (recorded in its table), or the battery proves nothing."""

    def check(battery: dict, case_id: str, verdicts) -> None:
        battery[f"{case_id} (control)"] = verdicts
        failures = [f for v in verdicts for f in v.failures]
        assert not failures, ("the good conversion fails, so the battery proves nothing:\n"
                              + "\n".join(failures))

    return check


@pytest.fixture(scope="session")
def save_report(pytestconfig):
    """save_report(name, title, about, table): a markdown report under the reports dir, printed too."""
    bench = state.bench(pytestconfig)

    def save(name: str, title: str, about: str, table: str) -> None:
        path = state.run(pytestconfig).reports_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {title}\n\nprofile {bench.profile.name}, target {FAULT_TARGET}, "
                        f"{about}\n\n{table}")
        print(f"\n{table}")

    return save

