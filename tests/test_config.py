"""The districts file: defaults merged, districts sorted, and every mistake named by district and field."""

from __future__ import annotations

import pytest

from clever_attendance.pipeline import config

GOOD = """
defaults:
  timezone: America/Chicago
  lookback_days: 2
  code_map:
    - {status: present, att_code: ""}
    - {status: tardy, att_code: T}
    - {status: absent, att_code: A}
districts:
  - slug: zeta
    name: Zeta
    clever_district_id: 5f0c1e2d3a4b5c6d7e8f9a0b
    safety_shield_district_id: 1001
    lookback_days: 5
    code_map:
      - {status: absent, excuse_code: ILL, att_code: AE}
  - slug: alpha
    name: Alpha
    clever_district_id: 5f0c1e2d3a4b5c6d7e8f9a0c
    safety_shield_district_id: "1002"
    schools: [abc]
"""


def test_defaults_merge_and_districts_sort():
    settings = config.parse(GOOD)
    alpha, zeta = settings.districts
    assert (alpha.slug, zeta.slug) == ("alpha", "zeta")
    assert (alpha.lookback_days, zeta.lookback_days) == (2, 5)
    assert alpha.timezone == "America/Chicago" and alpha.schools == ("abc",) and zeta.schools is None
    assert zeta.safety_shield_district_id == "1001"
    assert [r.att_code for r in zeta.code_map] == ["AE", "", "T", "A"], "the district's rules come first"
    assert settings.poll_schedule == "*/15 6-17 * * 1-5" and settings.timezone == "America/Chicago"


def test_the_shipped_file_is_valid():
    slugs = [d.slug for d in config.load().districts]
    assert slugs == ["shelbyville", "springfield"]


def test_the_file_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "d.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(path))
    assert config.load().source == str(path)


@pytest.mark.parametrize("change,message", [
    (("timezone: America/Chicago\n  lookback", "timezone: Mars/Base\n  lookback"),
     "defaults: field 'timezone': unknown time zone 'Mars/Base'"),
    (("slug: zeta", "slug: Zeta-1"), "district 'Zeta-1': field 'slug'"),
    (("slug: alpha", "slug: zeta"), "district 'zeta': field 'slug': used twice"),
    (("    clever_district_id: 5f0c1e2d3a4b5c6d7e8f9a0c\n", ""),
     "district 'alpha': field 'clever_district_id': is required"),
    (("    lookback_days: 5", "    lookback_days: five"), "district 'zeta': field 'lookback_days': must be a whole"),
    (("    schools: [abc]", "    schools: abc"), "district 'alpha': field 'schools'"),
    (("    schools: [abc]", "    shcools: [abc]"), "district 'alpha': field 'shcools': is not a known setting"),
    (("excuse_code: ILL, att_code: AE", "excuse_code: ILL"), "district 'zeta': field 'code_map': rule 1 needs"),
    (("{status: absent, excuse_code", "{status: gone, excuse_code"), "district 'zeta': field 'code_map': rule 1"),
    (("    schools: [abc]", "    watch: sometimes"), "district 'alpha': field 'watch': must be true or false"),
    (("  lookback_days: 2", "  watch_interval_seconds: -1"),
     "defaults: field 'watch_interval_seconds': must be between 0 and 3600"),
    (("    schools: [abc]", "    guard: {absent_pints: 0.3}"),
     "district 'alpha': field 'guard': 'absent_pints' is not a threshold of the guard"),
    (("    schools: [abc]", "    guard: {hold_timeout_hours: 0}"),
     "district 'alpha': field 'guard': field 'hold_timeout_hours': must be between 0.01 and 168"),
    (("  lookback_days: 2", "  guard: strict"), "defaults: field 'guard': must be a mapping"),
])
def test_mistakes_name_the_district_and_the_field(change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(config.ConfigError) as raised:
        config.parse(GOOD.replace(old, new), "districts.yaml")
    assert str(raised.value).startswith("districts.yaml: ")
    assert message in str(raised.value)


def test_the_watcher_watches_every_district_unless_told_not_to():
    settings = config.parse(GOOD.replace("    schools: [abc]", "    watch: false"))
    assert settings.watch_interval_seconds == 60 and [d.slug for d in settings.watched()] == ["zeta"]
    off = config.parse(GOOD.replace("  lookback_days: 2", "  watch_interval_seconds: 0"))
    assert off.watched() == [], "0: no watcher, the polling DAG alone"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(config.ConfigError, match="nope.yaml: cannot read"):
        config.load(tmp_path / "nope.yaml")


def test_a_district_changes_one_threshold_of_the_guard_and_inherits_the_others():
    settings = config.parse(GOOD.replace("  lookback_days: 2", "  lookback_days: 2\n  guard: {absent_points: 0.3}")
                            .replace("    schools: [abc]", "    guard: {min_students: 3, enabled: false}"))
    alpha, zeta = settings.districts
    assert (alpha.guard.enabled, alpha.guard.min_students, alpha.guard.absent_points) == (False, 3, 0.3)
    assert zeta.guard == config.Guard(absent_points=0.3)
