"""The directory file: what a city admin writes, what they are told when it is wrong."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aufruf.offices.config import (
    DEMO_FILE,
    DirectoryError,
    dump_directory,
    load_directory,
    parse_directory,
)

# A small valid directory; the tests below break one thing in it at a known line.
SMALL = """\
holiday_state = "NW"

[[authorities]]
id = "buergeramt"
name = { de = "Bürgeramt", en = "Citizens' Office" }

[[service_groups]]
id = "ausweise"
letter = "A"
name = { de = "Ausweise", en = "ID cards" }

[[services]]
id = "personalausweis"
authority = "buergeramt"
group = "ausweise"
name = { de = "Personalausweis", en = "ID card" }
duration_minutes = 15

[[locations]]
id = "mitte"
authority = "buergeramt"
name = { de = "Bürgeramt Mitte", en = "Central office" }
address = "Rathausstraße 11, 58095 Hagen"
slot_minutes = 10

[[locations.services]]
service = "personalausweis"

[[locations.hours]]
days = ["mon", "tue"]
windows = [
    { opens = "08:00", closes = "12:30", appointment_counters = 1 },
    { opens = "13:30", closes = "15:00", appointment_counters = 1 },
]

[[locations.counters]]
id = "mitte-1"
name = "Platz 1"

[[locations.counters]]
id = "mitte-2"
name = "Platz 2"
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(text)
    return caught.value.errors


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_small_example_is_valid() -> None:
    directory = parse_directory(SMALL)

    location = directory.locations[0]
    assert location.holiday_state == "NW"
    assert location.hours[0].windows[1].opens == time(13, 30)
    assert location.counters[0].services == ("personalausweis",)


def test_demo_file_parses_and_has_the_contracted_offices() -> None:
    directory = load_directory(DEMO_FILE)

    offered = {
        loc.id: (loc.authority, [ls.service for ls in loc.services]) for loc in directory.locations
    }
    citizens = ["personalausweis", "reisepass", "meldebescheinigung", "anmeldung"]
    assert offered == {
        "buergeramt-mitte": ("buergeramt", [*citizens, "fuehrungszeugnis"]),
        "buergeramt-boele": ("buergeramt", citizens),
        "buergeramt-haspe": ("buergeramt", citizens),
        "buergeramt-hohenlimburg": ("buergeramt", citizens),
        "zulassungsstelle": (
            "zulassungsbehoerde",
            ["fahrzeug-zulassung", "fahrzeug-abmeldung", "umschreibung"],
        ),
        "fahrerlaubnisstelle": (
            "fahrerlaubnisbehoerde",
            ["fuehrerschein-umtausch", "fuehrerschein-ersterteilung"],
        ),
    }


def test_demo_keeps_counters_for_walk_ins_and_prints_at_every_kiosk() -> None:
    for location in load_directory(DEMO_FILE).locations:
        most = max(w.appointment_counters for h in location.hours for w in h.windows)
        assert 0 < most < len(location.counters), location.id
        assert location.holiday_state == "NW"
        assert [p.connection for p in location.printers] == ["agent"]
        assert [k.printer for k in location.kiosks] == [location.printers[0].id]
        open_days = {day for h in location.hours for day in h.days}
        assert open_days == {"mon", "tue", "wed", "thu", "fri"}, location.id


def test_demo_texts_exist_in_german_and_english_at_least() -> None:
    directory = load_directory(DEMO_FILE)
    texts = [a.name for a in directory.authorities] + [g.name for g in directory.service_groups]
    for service in directory.services:
        texts += [service.name, service.bring]
    for location in directory.locations:
        texts += [location.name, location.note] + [c.reason for c in location.closures]

    assert all({"de", "en"} <= set(t) and all(t.values()) for t in texts)


def test_demo_shows_both_kinds_of_caps() -> None:
    offered = [ls for loc in load_directory(DEMO_FILE).locations for ls in loc.services]

    assert any(ls.daily_cap for ls in offered)
    assert any(ls.parallel_cap for ls in offered)


@pytest.mark.parametrize("text", [SMALL, DEMO_FILE.read_text(encoding="utf-8")])
def test_parse_dump_parse_gives_the_same_directory(text: str) -> None:
    directory = parse_directory(text)

    assert parse_directory(dump_directory(directory)) == directory


def test_dump_writes_translations_as_inline_tables_and_windows_one_a_line() -> None:
    text = dump_directory(parse_directory(SMALL))

    assert 'name = { de = "Bürgeramt", en = "Citizens\' Office" }' in text
    assert '    { opens = "08:00", closes = "12:30", appointment_counters = 1 },' in text
    assert 'days = ["mon", "tue"]' in text


def test_equal_directories_written_differently_parse_equal() -> None:
    split_days = SMALL.replace(
        'days = ["mon", "tue"]\nwindows = [\n'
        '    { opens = "08:00", closes = "12:30", appointment_counters = 1 },\n'
        '    { opens = "13:30", closes = "15:00", appointment_counters = 1 },\n]',
        'days = ["tue"]\nwindows = [\n'
        '    { opens = "13:30", closes = "15:00", appointment_counters = 1 },\n'
        '    { opens = "8:00", closes = "12:30", appointment_counters = 1 },\n]\n\n'
        '[[locations.hours]]\ndays = ["mon"]\nwindows = [\n'
        '    { opens = "08:00", closes = "12:30", appointment_counters = 1 },\n'
        '    { opens = "13:30", closes = "15:00", appointment_counters = 1 },\n]',
    )
    assert split_days != SMALL

    assert parse_directory(split_days) == parse_directory(SMALL)


def test_location_without_holiday_state_takes_the_top_level_one_and_empty_means_none() -> None:
    own = SMALL.replace("slot_minutes = 10\n", 'slot_minutes = 10\nholiday_state = ""\n')

    assert parse_directory(SMALL).locations[0].holiday_state == "NW"
    assert parse_directory(own).locations[0].holiday_state == ""


def test_wrong_slot_minutes_names_line_and_field() -> None:
    text = SMALL.replace("slot_minutes = 10", "slot_minutes = 7")

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, 'slot_minutes')}: locations[0].slot_minutes: "
        "must be 5, 10 or 15"
    ]


def test_wrong_type_names_line_and_field() -> None:
    text = SMALL.replace("slot_minutes = 10", 'slot_minutes = "10"')

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, 'slot_minutes')}: locations[0].slot_minutes: "
        "expected int, got str"
    ]


def test_unknown_field_names_line_and_field() -> None:
    text = SMALL.replace("slot_minutes = 10", "slot_minutes = 10\nslot_minuts = 5")

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, 'slot_minuts')}: locations[0].slot_minuts: unknown field"
    ]


def test_missing_field_names_the_table() -> None:
    text = SMALL.replace('address = "Rathausstraße 11, 58095 Hagen"\n', "")

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, '[[locations]]')}: locations[0].address: is required"
    ]


def test_unknown_service_reference_names_line_and_field() -> None:
    text = SMALL.replace('service = "personalausweis"', 'service = "reisepass"')

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, 'service = ')}: locations[0].services[0].service: "
        'unknown service "reisepass"',
    ]


def test_counter_serving_a_service_not_offered_names_the_list_element() -> None:
    text = SMALL.replace('name = "Platz 2"', 'name = "Platz 2"\nservices = [\n  "reisepass",\n]')

    line = line_of(text, '  "reisepass"')

    assert errors_of(text) == [
        f"offices.toml:{line}: locations[0].counters[1].services[0]: "
        '"reisepass" is not offered at this location'
    ]


def test_unknown_authority_and_group_are_both_reported() -> None:
    text = SMALL.replace('group = "ausweise"', 'group = "pass"').replace(
        'authority = "buergeramt"\ngroup', 'authority = "amt"\ngroup'
    )

    authority, group = line_of(text, '"amt"'), line_of(text, '"pass"')

    assert errors_of(text) == [
        f'offices.toml:{authority}: services[0].authority: unknown authority "amt"',
        f'offices.toml:{group}: services[0].group: unknown service group "pass"',
    ]


def test_overlapping_windows_name_the_later_window() -> None:
    text = SMALL.replace('opens = "13:30", closes = "15:00"', 'opens = "12:00", closes = "15:00"')

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, '12:00')}: locations[0].hours[0].windows[1].opens: "
        "overlaps 08:00–12:30 on mon, tue"
    ]


def test_windows_of_one_day_overlap_across_hours_entries() -> None:
    text = SMALL + (
        '\n[[locations.hours]]\ndays = ["fri", "tue"]\n'
        'windows = [{ opens = "14:00", closes = "16:00", appointment_counters = 1 }]\n'
    )

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, '14:00')}: locations[0].hours[1].windows[0].opens: "
        "overlaps 13:30–15:00 on tue"
    ]


def test_window_closing_before_it_opens_names_closes() -> None:
    text = SMALL.replace('closes = "15:00"', 'closes = "13:00"')

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, '13:00')}: locations[0].hours[0].windows[1].closes: "
        "must be after opens (13:30)"
    ]


def test_more_appointment_counters_than_counters_is_an_error() -> None:
    text = SMALL.replace(
        'closes = "15:00", appointment_counters = 1', 'closes = "15:00", appointment_counters = 3'
    )

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, '= 3')}: "
        "locations[0].hours[0].windows[1].appointment_counters: "
        "is more than the 2 counters of this location"
    ]


def test_bad_time_names_the_window_key() -> None:
    text = SMALL.replace('opens = "13:30"', 'opens = "halb zwei"')

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, 'halb zwei')}: locations[0].hours[0].windows[1].opens: "
        'must be a time like "08:00"'
    ]


def test_every_error_is_reported_in_the_order_of_the_file() -> None:
    text = (
        SMALL.replace('letter = "A"', 'letter = "Ab"')
        .replace("duration_minutes = 15", "duration_minutes = 0")
        .replace("slot_minutes = 10", 'slot_minutes = 10\ntimezone = "Europe/Hagen"')
        .replace('id = "mitte-2"', 'id = "mitte-1"')
        + "\n[[locations.closures]]\nfirst_day = 2026-12-31\nlast_day = 2026-12-24\n"
        + 'reason = { en = "Holidays" }\n'
    )
    lines = {key: line_of(text, key) for key in ("letter", "duration", "timezone", "Platz 2")}
    closure = line_of(text, "last_day")

    assert errors_of(text) == [
        f"offices.toml:{lines['letter']}: service_groups[0].letter: must be one capital letter A–Z",
        f"offices.toml:{lines['duration']}: services[0].duration_minutes: must be at least 1",
        f"offices.toml:{lines['timezone']}: locations[0].timezone: "
        'unknown time zone "Europe/Hagen"',
        f"offices.toml:{lines['Platz 2'] - 1}: locations[0].counters[1].id: "
        'duplicate id "mitte-1" (also locations[0].counters[0])',
        f"offices.toml:{closure}: locations[0].closures[0].last_day: "
        "must not be before first_day (2026-12-31)",
        f"offices.toml:{closure + 1}: locations[0].closures[0].reason: "
        'needs a German text: { de = "…", en = "…" }',
    ]


def test_ids_of_counters_printers_and_kiosks_are_unique_across_locations() -> None:
    second = (
        SMALL[SMALL.index("[[locations]]") :]
        .replace('id = "mitte"', 'id = "nord"')
        .replace('id = "mitte-2"', 'id = "nord-2"')
    )
    text = SMALL + "\n" + second

    line = text.splitlines().index('id = "mitte-1"', line_of(text, 'id = "nord"')) + 1

    assert errors_of(text) == [
        f"offices.toml:{line}: locations[1].counters[0].id: "
        'duplicate id "mitte-1" (also locations[0].counters[0])'
    ]


def test_kiosk_printer_must_belong_to_the_same_location() -> None:
    text = SMALL + '\n[[locations.kiosks]]\nid = "k"\nname = "Kiosk"\nprinter = "p"\n'

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, 'printer =')}: locations[0].kiosks[0].printer: "
        '"p" is not a printer of this location'
    ]


def test_direct_printer_needs_a_target() -> None:
    text = SMALL + '\n[[locations.printers]]\nid = "p"\nname = "Drucker"\nconnection = "direct"\n'

    assert errors_of(text) == [
        f"offices.toml:{line_of(text, '[[locations.printers]]')}: locations[0].printers[0].target: "
        'is required with connection = "direct"'
    ]


def test_unknown_holiday_state_is_an_error() -> None:
    text = SMALL.replace('holiday_state = "NW"', 'holiday_state = "NRW"')

    assert errors_of(text)[0].startswith(
        'offices.toml:1: holiday_state: unknown German state "NRW"'
    )


def test_toml_syntax_error_keeps_the_line() -> None:
    text = SMALL.replace("slot_minutes = 10", "slot_minutes = = 10")

    (error,) = errors_of(text)
    assert error.startswith(f"offices.toml:{line_of(text, 'slot_minutes')}: ")


def test_errors_name_the_file_they_come_from(tmp_path: Path) -> None:
    path = tmp_path / "hagen.toml"
    path.write_text(SMALL.replace("slot_minutes = 10", "slot_minutes = 7"), encoding="utf-8")

    with pytest.raises(DirectoryError) as caught:
        load_directory(path)
    assert caught.value.errors[0].startswith(f"{path}:")


def test_closures_are_dates() -> None:
    text = SMALL + (
        "\n[[locations.closures]]\nfirst_day = 2026-12-24\nlast_day = 2026-12-24\n"
        'reason = { de = "Heiligabend" }\n'
    )

    (closure,) = parse_directory(text).locations[0].closures
    assert (closure.first_day, closure.last_day) == (date(2026, 12, 24), date(2026, 12, 24))


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(german=texts.filter(str.strip), english=texts, address=texts.filter(str.strip))
def test_any_text_survives_dump_and_parse(german: str, english: str, address: str) -> None:
    """Whatever an admin types into a name, the exported file reads back to the same name."""
    small = parse_directory(SMALL)
    location = msgspec.structs.replace(
        small.locations[0], name={"de": german, "en": english}, address=address[:300]
    )
    directory = msgspec.structs.replace(small, locations=(location,))

    assert parse_directory(dump_directory(directory)) == directory


def test_a_printers_deadline_is_read_defaults_to_a_minute_and_must_be_sensible() -> None:
    printer = '\n[[locations.printers]]\nid = "p"\nname = "Drucker"\n'
    quick = SMALL + printer + "print_deadline_seconds = 30\n"
    too_short = SMALL + printer + "print_deadline_seconds = 5\n"

    [default] = parse_directory(SMALL + printer).locations[0].printers
    [chosen] = parse_directory(quick).locations[0].printers
    assert (default.print_deadline_seconds, chosen.print_deadline_seconds) == (60, 30)
    [error] = errors_of(too_short)
    assert error == (
        f"offices.toml:{line_of(too_short, 'print_deadline_seconds')}: "
        "locations[0].printers[0].print_deadline_seconds: must be between 10 and 600"
    )
    assert parse_directory(dump_directory(parse_directory(quick))) == parse_directory(quick)


def test_a_location_may_word_its_spoken_call_with_both_placeholders() -> None:
    own = "Die Nummer %(number)s wird an %(counter)s erwartet"
    worded = SMALL + f'\n[locations.queue]\ncall_text = {{ de = "{own}" }}\n'
    unworded = SMALL + '\n[locations.queue]\ncall_text = { de = "Nummer %(number)s", xx = "x" }\n'

    assert parse_directory(worded).locations[0].queue.call_text == {"de": own}
    assert parse_directory(SMALL).locations[0].queue.call_text == {}
    assert parse_directory(dump_directory(parse_directory(worded))) == parse_directory(worded)
    assert "call_text" not in dump_directory(parse_directory(SMALL))
    line = line_of(unworded, "call_text")
    assert errors_of(unworded) == [
        f"offices.toml:{line}: locations[0].queue.call_text.de: "
        "must name %(number)s and %(counter)s, and nothing else",
        f"offices.toml:{line}: locations[0].queue.call_text.xx: "
        "not a language of the display (de, en, tr, ru, uk, ar)",
    ]
