"""Progress notes: what is left of each kind of long work, at this run's mean."""
from convcheck.progress import Progress, duration


def test_each_build_counts_down_its_own_kind():
    p = Progress()
    p.expect("conversions", ["a", "b", "c"])
    p.expect("attacks", ["x"])
    assert p.planned() == {"conversions": 3, "attacks": 1}
    assert p.built("conversions", "a", 10.0) == ("1 of 3 conversions built, 2 to go: ~20s at "
                                                 "this run's mean of 10s")
    assert p.built("conversions", "b", 110.0) == ("2 of 3 conversions built, 1 to go: ~60s at "
                                                  "this run's mean of 60s")
    assert p.built("attacks", "x", 5.0) == "1 of 1 attacks built"
    assert p.planned() == {"conversions": 1}


def test_a_build_outside_the_plan_has_no_note():
    p = Progress()
    assert p.built("trainings", "t", 3.0) == ""  # no plan (a script's Workbench)
    p.expect("trainings", ["u"])
    assert p.built("trainings", "t", 3.0) == ""
    assert p.planned() == {"trainings": 1}


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (4.4, 89, 600, 7200)] == ["4s", "89s", "10 min", "2.0 h"]
