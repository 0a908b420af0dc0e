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
    schools: [5f0c1e2d3a4b5c6d7e8f9aff]
"""
SCHOOL = "5f0c1e2d3a4b5c6d7e8f9aff"
SCHOOLS = f"    schools: [{SCHOOL}]"


def test_defaults_merge_and_districts_sort():
    fleet = config.parse(GOOD)
    alpha, zeta = fleet.districts
    assert (alpha.slug, zeta.slug) == ("alpha", "zeta")
    assert (alpha.lookback_days, zeta.lookback_days) == (2, 5)
    assert alpha.timezone == "America/Chicago" and alpha.schools == (SCHOOL,) and zeta.schools is None
    assert zeta.safety_shield_district_id == "1001"
    assert [r.att_code for r in zeta.code_map] == ["AE", "", "T", "A"], "the district's rules come first"
    assert fleet.poll_schedule == "*/15 6-17 * * 1-5" and fleet.timezone == "America/Chicago"


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
    ((SCHOOLS, "    schools: abc"), "district 'alpha': field 'schools'"),
    ((SCHOOLS, "    shcools: [abc]"), "district 'alpha': field 'shcools': is not a known setting"),
    (("excuse_code: ILL, att_code: AE", "excuse_code: ILL"), "district 'zeta': field 'code_map': rule 1 needs"),
    (("{status: absent, excuse_code", "{status: gone, excuse_code"), "district 'zeta': field 'code_map': rule 1"),
    ((SCHOOLS, "    watch: sometimes"), "district 'alpha': field 'watch': must be true or false"),
    (("  lookback_days: 2", "  watch_interval_seconds: -1"),
     "defaults: field 'watch_interval_seconds': must be between 0 and 3600"),
    ((SCHOOLS, "    guard: {absent_pints: 0.3}"),
     "district 'alpha': field 'guard': 'absent_pints' is not a threshold of the guard"),
    ((SCHOOLS, "    guard: {hold_timeout_hours: 0}"),
     "district 'alpha': field 'guard': field 'hold_timeout_hours': must be between 0.01 and 168"),
    (("  lookback_days: 2", "  guard: strict"), "defaults: field 'guard': must be a mapping"),
])
def test_mistakes_name_the_district_and_the_field(change, message):
    old, new = change
    assert old in GOOD
    refused = refusal(GOOD.replace(old, new))
    assert refused.startswith("districts.yaml: ")
    assert message in refused


def test_a_broken_district_is_left_out_and_named_while_the_others_run():
    fleet = config.parse(GOOD.replace(SCHOOLS, SCHOOLS + "\n    timezone: Mars/Base"), "districts.yaml")
    assert [d.slug for d in fleet.districts] == ["zeta"]
    assert fleet.broken == (config.Broken("alpha", "districts.yaml: district 'alpha': field 'timezone': unknown "
                                                      "time zone 'Mars/Base'"),)
    nameless = config.parse(GOOD.replace("  - slug: alpha\n", "  - slug: Alpha!\n"), "districts.yaml")
    assert [b.name for b in nameless.broken] == ["#2"], "a slug that is not one: named by its place in the file"
    with pytest.raises(config.ConfigError, match="district 'zeta': field 'lookback_days'"):  # none would run
        config.parse(GOOD.replace("    lookback_days: 5", "    lookback_days: x").replace(SCHOOLS, "    bad: 1"))


def test_the_watcher_watches_every_district_unless_told_not_to():
    fleet = config.parse(GOOD.replace(SCHOOLS, "    watch: false"))
    assert fleet.watch_interval_seconds == 60 and [d.slug for d in fleet.watched()] == ["zeta"]
    off = config.parse(GOOD.replace("  lookback_days: 2", "  watch_interval_seconds: 0"))
    assert off.watched() == [], "0: no watcher, the polling DAG alone"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(config.ConfigError, match="nope.yaml: cannot read"):
        config.load(tmp_path / "nope.yaml")


def test_a_district_changes_one_threshold_of_the_guard_and_inherits_the_others():
    fleet = config.parse(GOOD.replace("  lookback_days: 2", "  lookback_days: 2\n  guard: {absent_points: 0.3}")
                            .replace(SCHOOLS, "    guard: {min_students: 3, enabled: false}"))
    alpha, zeta = fleet.districts
    assert (alpha.guard.enabled, alpha.guard.min_students, alpha.guard.absent_points) == (False, 3, 0.3)
    assert zeta.guard == config.Guard(absent_points=0.3)


def test_the_shipped_file_names_its_reviewers_and_keeps_failed_staging_three_days():
    fleet = config.load()
    assert {d.reviewers for d in fleet.districts} == {("admin", "1")}
    assert fleet.staging_retention_days == 3 and fleet.keep_staging is False and fleet.deadline_alerts


# A districts file is untrusted input: what follows is what an attacker (or a slip of the keyboard) would write,
# and the exact refusal, which names the field and never echoes a huge value.

def refusal(text: str) -> str:
    """The refusal: of the whole file, or of the one district entry left out (the other is kept)."""
    try:
        fleet = config.parse(text, "districts.yaml")
    except config.ConfigError as raised:
        return str(raised)
    broken, = fleet.broken
    assert len(fleet.districts) == 1, "the other district runs"
    return broken.error


def hostile(old: str, new: str) -> str:
    assert old in GOOD
    return refusal(GOOD.replace(old, new, 1))


@pytest.mark.parametrize("old,new,message", [
    ("  lookback_days: 2", "  keep_staging: 'false'",
     "districts.yaml: defaults: field 'keep_staging': must be true or false, not 'false'"),
    ("  lookback_days: 2", '  deadline_alerts: "false"',
     "districts.yaml: defaults: field 'deadline_alerts': must be true or false, not 'false'"),
    ("  lookback_days: 2", "  keep_staging: 0",
     "districts.yaml: defaults: field 'keep_staging': must be true or false, not 0"),
    (SCHOOLS, "    watch: 'no'", "districts.yaml: district 'alpha': field 'watch': must be true or false, not 'no'"),
    (SCHOOLS, "    guard: {enabled: 'false'}",
     "districts.yaml: district 'alpha': field 'guard': field 'enabled': must be true or false, not 'false'"),
    (SCHOOLS, "    guard: false",
     "districts.yaml: district 'alpha': field 'guard': must be a mapping of the guard's thresholds, not False"),
])
def test_a_quoted_false_is_refused_not_taken_for_true(old, new, message):
    assert hostile(old, new) == message


def test_booleans_are_read_as_written():
    fleet = config.parse(GOOD.replace("  lookback_days: 2", "  keep_staging: true\n  deadline_alerts: false"))
    assert (fleet.keep_staging, fleet.deadline_alerts) == (True, False)


@pytest.mark.parametrize("old,new,message", [
    ("slug: alpha", 'slug: "alpha\\n"',
     "district 'alpha\\n': field 'slug': 'alpha\\n' does not match [a-z0-9_]{1,64}"),
    ("slug: alpha", "slug: ../alpha", "district '../alpha': field 'slug': '../alpha' does not match [a-z0-9_]{1,64}"),
    ("slug: alpha", "slug: " + "a" * 65, f"district '{'a' * 65}': field 'slug': '{'a' * 65}' does not match "
                                         "[a-z0-9_]{1,64}"),
    ("5f0c1e2d3a4b5c6d7e8f9a0c", '"5f0c1e2d3a4b5c6d7e8f9a0c\\n"',
     "district 'alpha': field 'clever_district_id': '5f0c1e2d3a4b5c6d7e8f9a0c\\n' does not match [0-9a-f]{24}"),
    ('"1002"', '"1002\\n"', "district 'alpha': field 'safety_shield_district_id': '1002\\n' does not match "
                            "[A-Za-z0-9_-]{1,64}"),
    ('"1002"', '"../1002"', "district 'alpha': field 'safety_shield_district_id': '../1002' does not match "
                            "[A-Za-z0-9_-]{1,64}"),
    ("name: Alpha", 'name: "Alpha\\nBcc: attacker@evil.test"',
     "district 'alpha': field 'name': 'Alpha\\nBcc: attacker@evil.test' holds a control character or a lone surrogate"),
    ("name: Alpha", 'name: "Alpha\\0"',
     "district 'alpha': field 'name': 'Alpha\\x00' holds a control character or a lone surrogate"),
    ("name: Alpha", 'name: "Alpha \\u202eahplA"',
     "district 'alpha': field 'name': 'Alpha \\u202eahplA' holds a control character or a lone surrogate"),
    ("name: Alpha", "name: " + "A" * 201, "district 'alpha': field 'name': must be at most 200 characters, not 201"),
    (SCHOOLS, f'    schools: ["{SCHOOL}\\n"]',
     f"district 'alpha': field 'schools': entry 1: '{SCHOOL}\\n' does not match [0-9a-f]{{24}}"),
    (SCHOOLS, '    clever_conn_id: "clever_default\\n"',
     "district 'alpha': field 'clever_conn_id': 'clever_default\\n' does not match [A-Za-z0-9_.-]{1,250}"),
    (SCHOOLS, "    safety_shield_conn_id: " + "c" * 251,
     "district 'alpha': field 'safety_shield_conn_id': must be at most 250 characters, not 251"),
    ("excuse_code: ILL,", 'excuse_code: "ILL\\n",',
     "district 'zeta': field 'code_map': rule 1: excuse_code 'ILL\\n' holds a control character or a lone surrogate"),
    ("att_code: AE}", 'att_code: "AE\\r"}',
     "district 'zeta': field 'code_map': rule 1: att_code 'AE\\r' holds a control character or a lone surrogate"),
    ("excuse_code: ILL,", "excuse_code: " + "X" * 65 + ",",
     "district 'zeta': field 'code_map': rule 1: excuse_code must be at most 64 characters, not 65"),
    (SCHOOLS, '    reviewers: ["admin\\n"]',
     "district 'alpha': field 'reviewers': entry 1: 'admin\\n' does not match [A-Za-z0-9_.@+-]{1,64}"),
    ("  lookback_days: 2", '  poll_schedule: "*/15 * * * *\\n"',
     "defaults: field 'poll_schedule': '*/15 * * * *\\n' holds a control character or a lone surrogate"),
    ("timezone: America/Chicago", 'timezone: "UTC\\n"',
     "defaults: field 'timezone': 'UTC\\n' holds a control character or a lone surrogate"),
    ("timezone: America/Chicago", "timezone: America", "defaults: field 'timezone': unknown time zone 'America'"),
    ("name: Alpha", 'name: "\\ud800"',
     "line 18: not valid YAML: found invalid Unicode character escape code"),  # libyaml refuses a lone surrogate
])
def test_a_trailing_newline_a_control_character_or_an_unbounded_value_is_refused(old, new, message):
    assert hostile(old, new) == f"districts.yaml: {message}"


def test_a_lone_surrogate_handed_to_parse_is_refused():
    assert refusal(GOOD.replace("name: Alpha", "name: Alpha\ud800")).startswith("districts.yaml: not valid YAML: ")


@pytest.mark.parametrize("address", [
    "ops@district.test\nBcc: attacker@evil.test", "ops@district.test, attacker@evil.test", "ops@district.test ",
    "Ops <ops@district.test>", "ops", "@district.test", "ops@", "ops@dis trict.test", "ops@district.test\0",
    "o" * 65 + "@district.test",
])
def test_an_e_mail_address_is_an_address_and_nothing_more(address):
    quoted = address.replace("\n", "\\n").replace("\0", "\\0")
    message = hostile("  lookback_days: 2", f'  alert_emails: ["{quoted}"]')
    assert message.startswith("districts.yaml: defaults: field 'alert_emails': entry 1: ")
    assert message.endswith(" is not an e-mail address")
    assert repr(address) in message or len(repr(address)) > 80, "shown as written, escaped, unless too long"
    assert hostile("  lookback_days: 2", f'  alert_from: "{quoted}"').startswith(
        "districts.yaml: defaults: field 'alert_from': ")


def test_e_mail_addresses_as_districts_have_them():
    fleet = config.parse(GOOD.replace("  lookback_days: 2", "  alert_emails: [ops@district.test]\n"
                                         "  alert_from: attendance-robot@mail.district.k12.us")
                            .replace(SCHOOLS, "    alert_emails: [\"o'brien+attendance@district.test\"]"))
    alpha, zeta = fleet.districts
    assert alpha.alert_emails == ("o'brien+attendance@district.test",) and zeta.alert_emails == ("ops@district.test",)
    assert fleet.alert_from == "attendance-robot@mail.district.k12.us"
    assert config.parse(GOOD).alert_from == "clever-attendance@localhost"


# 341 bytes: nine times nine ... "lol"s, 387 million of them once expanded
BOMB = "\n".join(['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
    f"{name}: &{name} [{','.join([f'*{alias}'] * 9)}]" for alias, name in zip("abcdefgh", "bcdefghi", strict=True)])


def test_an_alias_bomb_is_refused_at_once_in_a_short_message():
    """At its first anchor (line 1), before anything is expanded."""
    message = refusal(BOMB)
    assert message == "districts.yaml: line 1: YAML anchors and aliases (& and *) are not allowed"


@pytest.mark.parametrize("old,new,message", [
    ("  lookback_days: 2", "  lookback_days: &two 2", "line 4: YAML anchors and aliases (& and *) are not allowed"),
    ("    lookback_days: 5", "    lookback_days: *two", "line 14: YAML anchors and aliases (& and *) are not allowed"),
    (SCHOOLS, "    <<: {lookback_days: 9}", "line 21: YAML merge keys (<<) are not allowed"),
    ('"1002"', "0123", "line 20: '0123': write a whole number in decimal (at most 18 digits), or quote it"),
    ("lookback_days: 5", "lookback_days: 0x10", "line 14: '0x10': write a whole number in decimal (at most 18 digits), "
                                                "or quote it"),
    ("lookback_days: 5", "lookback_days: 1:30", "line 14: '1:30': write a whole number in decimal (at most 18 digits), "
                                                "or quote it"),
    ("excuse_code: ILL", "excuse_code: NO",
     "district 'zeta': field 'code_map': rule 1: excuse_code must be a non-empty string, not False (quote it)"),
    (SCHOOLS, "    name: !!python/object/apply:os.system [id]",
     "line 21: not valid YAML: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'"),
])
def test_yaml_tricks_are_refused(old, new, message):
    assert hostile(old, new) == f"districts.yaml: {message}"


@pytest.mark.parametrize("old,new,message", [
    ("    lookback_days: 5", "    lookback_days: 5\n    lookback_days: 50",
     "line 15: key 'lookback_days' is given twice"),
    ("  - slug: alpha", "  - slug: alpha\n    slug: zeta", "line 18: key 'slug' is given twice"),
    ("  lookback_days: 2", "  lookback_days: 2\n  timezone: Asia/Tokyo", "line 5: key 'timezone' is given twice"),
    ("{status: absent, excuse_code: ILL", "{status: absent, excuse_code: ILL, status: present",
     "line 16: key 'status' is given twice"),
    (SCHOOLS, SCHOOLS + "\ndistricts: []", "line 22: key 'districts' is given twice"),
])
def test_a_key_given_twice_is_refused_not_overwritten(old, new, message):
    assert hostile(old, new) == f"districts.yaml: {message}"


UNKNOWN_AT_TOP = "is not a known setting (only defaults and districts are)"


@pytest.mark.parametrize("old,new,message", [
    ("defaults:", "default:", f"field 'default': {UNKNOWN_AT_TOP}"),
    ("districts:", "district: []\ndistricts:", f"field 'district': {UNKNOWN_AT_TOP}"),
    ("defaults:", "defaults: false\ndefault:", f"field 'default': {UNKNOWN_AT_TOP}"),
    ("  lookback_days: 2", "  1: 2", "defaults: field 1: is not a known setting"),
    (SCHOOLS, "    staging_retention_days: 7",
     "district 'alpha': field 'staging_retention_days': is not a known setting"),
])
def test_an_unknown_key_anywhere_is_named(old, new, message):
    assert hostile(old, new) == f"districts.yaml: {message}"


def test_defaults_that_are_not_a_mapping_are_refused():
    text = "defaults: false\n" + GOOD[GOOD.index("districts:"):]
    assert refusal(text) == "districts.yaml: defaults: must be a mapping of settings, not False"


@pytest.mark.parametrize("old,new,message", [
    ("5f0c1e2d3a4b5c6d7e8f9a0c", "5f0c1e2d3a4b5c6d7e8f9a0b",
     "district 'alpha': field 'clever_district_id': used twice, also by district 'zeta'"),
    ('"1002"', '"1001"', "district 'alpha': field 'safety_shield_district_id': used twice, also by district 'zeta'"),
])
def test_two_districts_with_one_id_are_refused(old, new, message):
    assert hostile(old, new) == f"districts.yaml: {message}"


def test_an_oversized_file_is_refused_unread(tmp_path):
    assert refusal("#" * (5 * 1024 * 1024 + 1)) == "districts.yaml: larger than 5242880 bytes"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (5 * 1024 * 1024 + 1))
    with pytest.raises(config.ConfigError) as raised:
        config.load(big)
    assert str(raised.value) == f"{big}: larger than 5242880 bytes"


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.yaml"
    text = GOOD.replace("name: Alpha", "name: Alph\xe9")  # Latin-1, not UTF-8
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(config.ConfigError) as raised:
        config.load(path)
    assert str(raised.value) == f"{path}: not UTF-8 text (byte {text.index('Alph') + 4})"


def test_more_districts_than_a_run_may_map_are_refused(monkeypatch):
    monkeypatch.setattr(config, "MAX_MAP_LENGTH", 1)
    assert refusal(GOOD) == "districts.yaml: 2 districts, more than the 1 one run may map (Airflow's " \
                            "max_map_length as the project sets it)"


def test_deep_nesting_and_too_many_values_are_refused(monkeypatch):
    assert refusal("districts: " + "[" * 50 + "]" * 50) == "districts.yaml: line 1: nested more than 10 deep"
    monkeypatch.setattr(config, "MAX_NODES", 30)
    assert refusal(GOOD).endswith(": over 30 values")


@pytest.mark.parametrize("old,new,start", [
    ("  lookback_days: 2", "  lookback_days: '" + "x" * 1_000_000 + "'",
     "districts.yaml: defaults: field 'lookback_days': must be a whole number, not 'xxxxx"),
    ("  lookback_days: 2", "  ? '" + "k" * 1_000_000 + "'\n  : 1", "districts.yaml: defaults: field 'kkkkk"),
    ("name: Alpha", "name: [" + ",".join(["1"] * 10_000) + "]",  # 20 kB: reprlib shows 6 items of any list
     "districts.yaml: district 'alpha': field 'name': must be a non-empty string, not [1, 1, 1, 1, 1, 1, ...]"),
    ("slug: alpha", "slug: '" + "s" * 1_000_000 + "'", "districts.yaml: district 'sssss"),
])
def test_a_huge_value_is_never_echoed_whole(old, new, start):
    message = hostile(old, new)
    assert message.startswith(start) and len(message) < 400


def test_reviewers_are_inherited_or_the_districts_own():
    fleet = config.parse(GOOD.replace("  lookback_days: 2", "  lookback_days: 2\n  reviewers: [admin, 7]")
                            .replace("    lookback_days: 5", "    reviewers: [jane.doe@district.test]"))
    alpha, zeta = fleet.districts
    assert (alpha.reviewers, zeta.reviewers) == (("admin", "7"), ("jane.doe@district.test",)), "FAB's ids: numbers"
    assert config.parse(GOOD.replace(SCHOOLS, "    reviewers: []")).districts[0].reviewers == ()
    assert config.parse(GOOD).districts[0].reviewers == (), "none named: Airflow's own rule"


@pytest.mark.parametrize("value,problem", [
    ("admin", "must be a list of Airflow user ids, not 'admin'"),
    ("[ad min]", "entry 1: 'ad min' does not match [A-Za-z0-9_.@+-]{1,64}"),
    ("[admin, '../root']", "entry 2: '../root' does not match [A-Za-z0-9_.@+-]{1,64}"),
    ("[true]", "entry 1: must be a non-empty string, not True (quote it)"),
    ("[[admin]]", "entry 1: must be a non-empty string, not ['admin']"),
    ("[" + "a" * 65 + "]", f"entry 1: '{'a' * 65}' does not match [A-Za-z0-9_.@+-]{{1,64}}"),
])
def test_a_reviewer_is_an_airflow_user_id(value, problem):
    message = hostile(SCHOOLS, f"    reviewers: {value}")
    assert message == f"districts.yaml: district 'alpha': field 'reviewers': {problem}"


@pytest.mark.parametrize("value,expected", [
    (None, 3), ("1", 1), ("90", 90),
    ("0", "must be between 1 and 90, not 0"), ("91", "must be between 1 and 90, not 91"),
    ("'7'", "must be a whole number, not '7'"), ("1.5", "must be a whole number, not 1.5"),
])
def test_staging_retention_days(value, expected):
    text = GOOD if value is None else GOOD.replace("  lookback_days: 2", f"  staging_retention_days: {value}")
    if isinstance(expected, int):
        assert config.parse(text).staging_retention_days == expected
    else:
        assert refusal(text) == f"districts.yaml: defaults: field 'staging_retention_days': {expected}"


def test_a_thousand_districts_load_under_the_strict_composer(tmp_path):
    """(How fast: bench/poll_scale.py's parse figure; about 0.1 s here.)"""
    from clever_attendance_sandbox.testing import copies_file

    fleet = config.load(copies_file(tmp_path / "districts.yaml", 1000))
    assert len(fleet.districts) == 1000 and fleet.districts[0].reviewers == ("admin", "1")
