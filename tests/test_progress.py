"""Progress notes: what is left of each kind of long work, at this run's mean."""
from convcheck.progress import Progress, duration, wall_by_kind, wall_seconds


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


def test_builds_at_once_share_the_time_left_and_count_once_in_the_wall_time():
    p = Progress(at_once={"conversions": 2})
    p.expect("conversions", ["a", "b", "c"])
    assert p.built("conversions", "a", 10.0) == ("1 of 3 conversions built, 2 to go: ~10s at "
                                                 "this run's mean of 10s, 2 at a time")
    # two 10 s conversions side by side and a training after them: 10 s and 5 s of wall clock
    assert wall_seconds([(0, 10), (2, 10), (12, 17)]) == 15
    assert wall_seconds([(0, 10), (2, 4)]) == 10 and wall_seconds([]) == 0
    assert wall_by_kind({"conversions": [(0, 10), (2, 10)], "trainings": [(5, 20)]}) == {
        "conversions": 10, "trainings": 15, "all": 20}
    assert len(p.spans["conversions"]) == 1
