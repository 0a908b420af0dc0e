"""The attendance dates a run syncs: trailing windows across daylight-saving changes, and the form's window."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from clever_attendance.contracts import RunOptions, Window
from clever_attendance.errors import RunInputError
from clever_attendance.pipeline.window import requested, single_day, trailing


def test_trailing_window_is_the_local_date_across_daylight_saving_changes():
    # 2026-11-01 02:00 New York falls back to 01:00 EST; 2026-03-08 springs forward
    assert trailing(datetime(2026, 11, 2, 4, 30, tzinfo=UTC), "America/New_York", 3) == \
        Window(date(2026, 10, 29), date(2026, 11, 1)), "23:30 EST on Sunday the 1st"
    assert trailing(datetime(2026, 11, 2, 5, 30, tzinfo=UTC), "America/New_York", 3) == \
        Window(date(2026, 10, 30), date(2026, 11, 2))
    assert trailing(datetime(2026, 3, 9, 3, 30, tzinfo=UTC), "America/New_York", 0) == \
        Window(date(2026, 3, 8), date(2026, 3, 8)), "23:30 EDT on Sunday the 8th"
    assert single_day(datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "America/New_York") == \
        Window(date(2026, 3, 8), date(2026, 3, 8)), "02:00 on the spring-forward day does not exist: 03:00"


def test_the_form_window():
    today = date(2026, 11, 20)
    assert requested(RunOptions.parse({}), today) is None
    assert requested(RunOptions.parse({"start_date": "2026-11-16", "end_date": "2026-11-19"}), today) == \
        Window(date(2026, 11, 16), date(2026, 11, 19))
    assert requested(RunOptions.parse({"end_date": "2026-11-18"}), today) == Window(date(2026, 11, 18),
                                                                                   date(2026, 11, 18))


@pytest.mark.parametrize("params, message", [
    ({"start_date": "2026-11-19", "end_date": "2026-11-10"}, "field 'end_date': 2026-11-10 is before start_date "
                                                             "2026-11-19"),
    ({"start_date": "2026-13-01"}, "field 'start_date': '2026-13-01' is not a date (YYYY-MM-DD)"),
    ({"start_date": "2026-11-01", "end_date": "11/20/2026"}, "field 'end_date': '11/20/2026' is not a date"),
    ({"start_date": "2026-05-01", "end_date": "2026-05-02"}, "field 'start_date': 2026-05-01 is older than "
                                                             "Clever keeps attendance (183 days: the earliest date "
                                                             "is 2026-05-21)"),
    # a form or a REST conf is anyone's: a ten-year window, the end of time, a huge or non-text value
    ({"start_date": "2026-11-01", "end_date": "2036-11-01"}, "field 'end_date': 2036-11-01 is in the future: "
                                                             "Clever holds no attendance after 2026-11-21"),
    ({"start_date": "2026-11-01", "end_date": "9999-12-31"}, "field 'end_date': 9999-12-31 is in the future"),
    ({"start_date": "2026-11-01" + "x" * 1_000_000}, "field 'start_date': '2026-11-01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' "
                                                     "is not a date"),
    ({"start_date": 20261101}, "field 'start_date': '20261101' is not a date"),
])
def test_a_bad_form_window_is_refused_naming_the_field(params, message):
    with pytest.raises(RunInputError) as refused:
        requested(RunOptions.parse(params), date(2026, 11, 20))
    assert str(refused.value).startswith(message) and len(str(refused.value)) < 200


def test_chunks_cover_the_window_in_order():
    window = Window(date(2026, 11, 1), date(2026, 11, 16))
    assert [str(c) for c in window.chunks(7)] == ["2026-11-01_2026-11-07", "2026-11-08_2026-11-14",
                                                  "2026-11-15_2026-11-16"]
    assert Window.parse(str(window)) == window and window.days == 16


@pytest.mark.parametrize("params, message", [
    ({"dry_run": "yes"}, "field 'dry_run': must be true or false, not 'yes'"),
    ({"force": 1}, "field 'force': must be true or false, not '1'"),
    ({"districts": "springfield"}, "field 'districts': must be a list of district slugs"),
    ({"districts": ["springfield", 3]}, "field 'districts': must be a list of district slugs"),
    ({"hold": ["x"]}, "field 'hold': must name the run's own hold"),
])
def test_a_run_option_of_the_wrong_kind_is_refused_naming_the_field(params, message):
    with pytest.raises(RunInputError, match=message):
        RunOptions.parse(params)


def test_run_options_are_parsed_once_from_the_form_with_their_defaults():
    form = {"districts": None, "start_date": None, "end_date": "2026-11-18", "dry_run": True, "force": False,
            "conf_key_the_dags_do_not_take": 1}
    assert RunOptions.parse(form) == RunOptions(end_date=date(2026, 11, 18), dry_run=True)
    assert RunOptions.of({"params": {"districts": ["springfield"]}}).districts == ("springfield",)
    assert RunOptions.of({}) == RunOptions()
