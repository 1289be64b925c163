"""The ``hafen edge check-config`` and ``load-acl`` commands: exit codes and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.agent.access_list import applied_version
from edge.agent.config import EdgeConfig
from edge.agent.store import EdgeStore
from hafen.config import ConfigError, validate_config
from tests.support.edge import CARD_KEY_HEX, edge_config_dict
from tests.support.edge_cli import check, failed, run, write_config

# --- check-config -------------------------------------------------------------------------------


def test_good_config_is_ok(tmp_path):
    path = write_config(tmp_path)
    result = check(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok (site leipzig-ost, device front-door)\n"
    assert result.stderr == ""


def test_minimal_config_is_ok(tmp_path):
    path = tmp_path / "min.toml"
    path.write_text(
        '[site]\nid = "halle"\n\n[device]\nid = "d1"\n\n'
        f'[cards]\nhash_key = "{CARD_KEY_HEX}"\n\n[door]\nstrike = {{ pin = "GPIO5" }}\n',
        encoding="utf-8",
    )
    result = check(path)
    assert (result.exit_code, result.stdout) == (0, f"{path}: ok (site halle, device d1)\n")


def test_key_file_instead_of_key(tmp_path):
    key_file = tmp_path / "card.key"
    key_file.write_text(CARD_KEY_HEX + "\n", encoding="ascii")
    config = edge_config_dict(tmp_path)
    config["cards"] = {"hash_key_file": str(key_file)}
    assert check(write_config(tmp_path, config)).exit_code == 0


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    config = edge_config_dict(tmp_path)
    config["door"]["unlok_seconds"] = 3
    path = write_config(tmp_path, config)
    message = failed(check(path))
    assert message == (
        f"{path}: invalid config\n"
        "  door.unlok_seconds: unknown key (did you mean 'unlock_seconds'?)\n"
    )


def test_unknown_key_in_a_nested_table(tmp_path):
    config = edge_config_dict(tmp_path)
    config["door"]["strike"] = {"pin": 17, "activ_high": False}
    message = failed(check(write_config(tmp_path, config)))
    assert "  door.strike.activ_high: unknown key (did you mean 'active_high'?)\n" in message


def test_unknown_key_without_a_close_match(tmp_path):
    config = edge_config_dict(tmp_path)
    config["site"]["colour"] = "blue"
    message = failed(check(write_config(tmp_path, config)))
    assert "  site.colour: unknown key\n" in message


def test_misspelt_section(tmp_path):
    config = edge_config_dict(tmp_path)
    config["doorr"] = config.pop("door")
    message = failed(check(write_config(tmp_path, config)))
    assert "  doorr: unknown key (did you mean 'door'?)\n" in message
    assert "  door: required key is missing\n" in message


def _set(section: str, key: str, value: object):
    def change(config: dict) -> None:
        config[section][key] = value

    return change


def _drop(section: str, key: str):
    def change(config: dict) -> None:
        del config[section][key]

    return change


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            _set("door", "unlock_seconds", -1),
            "  door.unlock_seconds: Input should be greater than 0 (got -1)",
        ),
        (
            _set("door", "held_open_seconds", 3601),
            "  door.held_open_seconds: Input should be less than or equal to 3600 (got 3601)",
        ),
        (
            _set("door", "fail_mode", "open"),
            "  door.fail_mode: Input should be 'secure' or 'safe' (got 'open')",
        ),
        (
            _set("site", "timezone", "Europe/Leipzig"),
            "  site.timezone: unknown time zone 'Europe/Leipzig', use an IANA name such as"
            " Europe/Berlin",
        ),
        (
            _set("cards", "hash_key", "abcd"),
            "  cards.hash_key: the card hash key is at least 32 hex digits (16 bytes)",
        ),
        (
            _set("door", "led", {"pin": 17}),
            "  door: led.pin 17 is already used by strike",
        ),
        (
            _set("door", "buzzer", {"pin": "GPIO22"}),
            "  door: buzzer.pin 22 is already used by exit_button",
        ),
        (_drop("site", "id"), "  site.id: required key is missing"),
        (_set("site", "id", "Leipzig Ost"), "  site.id: String should match pattern"),
        (_drop("door", "strike"), "  door.strike: required key is missing"),
        (
            _set("store", "synchronous", "off"),
            "  store.synchronous: Input should be 'full' or 'normal' (got 'off')",
        ),
        (
            _set("reader", "targets", []),
            "  reader.targets: List should have at least 1 item after validation, not 0",
        ),
    ],
)
def test_bad_value_names_key_and_reason(tmp_path, change, line):
    config = edge_config_dict(tmp_path)
    change(config)
    path = write_config(tmp_path, config)
    message = failed(check(path))
    assert message.startswith(f"{path}: invalid config\n")
    assert line in message


def test_every_problem_is_named_at_once(tmp_path):
    config = edge_config_dict(tmp_path)
    config["door"]["unlock_seconds"] = 0
    config["site"]["timezone"] = "Mars/Olympus"
    config["reader"]["poll"] = 1
    message = failed(check(write_config(tmp_path, config)))
    lines = message.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "site.timezone",
        "reader.poll",
        "door.unlock_seconds",
    ]


def test_neither_key_nor_key_file(tmp_path):
    config = edge_config_dict(tmp_path)
    config["cards"] = {}
    message = failed(check(write_config(tmp_path, config)))
    assert "  cards: set exactly one of hash_key and hash_key_file" in message


def test_unreadable_key_file(tmp_path):
    config = edge_config_dict(tmp_path)
    config["cards"] = {"hash_key_file": str(tmp_path / "missing.key")}
    message = failed(check(write_config(tmp_path, config)))
    assert "  cards.hash_key_file: cannot read the key file: " in message
    assert "No such file or directory" in message


def test_malformed_toml_names_the_line(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text('[site]\nid = "leipzig-ost"\n\n[door\nunlock_seconds = 5\n', encoding="utf-8")
    message = failed(check(path))
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "(at line 4, column 6)" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    assert failed(check(path)) == f"{path}: no such file\n"


def test_directory_instead_of_file(tmp_path):
    assert failed(check(tmp_path)) == f"{tmp_path}: cannot read: Is a directory\n"


def test_file_not_in_utf8(tmp_path):
    path = write_config(tmp_path)
    path.write_bytes("# Tür der Werkstatt\n".encode("latin-1") + path.read_bytes())
    assert "not valid" in failed(check(path))


@pytest.mark.parametrize("both", [False, True])
def test_errors_never_print_the_hash_key(tmp_path, both):
    config = edge_config_dict(tmp_path)
    if both:  # a good key, given twice: only the model-level check fails
        key_file = tmp_path / "card.key"
        key_file.write_text(CARD_KEY_HEX, encoding="ascii")
        config["cards"] = {"hash_key": CARD_KEY_HEX, "hash_key_file": str(key_file)}
    else:  # one digit short
        config["cards"] = {"hash_key": CARD_KEY_HEX[:-1]}
    message = failed(check(write_config(tmp_path, config)))
    assert "  cards" in message
    assert CARD_KEY_HEX[:-1] not in message


@pytest.mark.parametrize("name", ["BCM17", "GPIO17", "gpio17", "17"])
def test_same_pin_under_another_name(tmp_path, name):
    config = edge_config_dict(tmp_path)
    config["door"]["led"] = {"pin": name}  # the strike is on BCM 17
    assert "is already used by strike" in failed(check(write_config(tmp_path, config)))


@pytest.mark.parametrize(("strike", "pir"), [(17, "GPIO17"), ("GPIO17", "BCM17"), ("bcm17", 17)])
def test_a_room_pir_on_the_door_strike_names_both(tmp_path, strike, pir):
    config = edge_config_dict(tmp_path)
    config["door"]["strike"] = {"pin": strike}
    config["occupancy"] = {"rooms": [{"name": "hall", "pin": 5}, {"name": "desks", "pin": pir}]}
    message = failed(check(write_config(tmp_path, config)))
    assert "  occupancy: rooms.1.pin 17 is already used by door.strike\n" in message


def test_two_room_pirs_on_one_pin_name_both(tmp_path):
    config = edge_config_dict(tmp_path)
    config["occupancy"] = {"rooms": [{"name": "hall", "pin": 5}, {"name": "desks", "pin": "GPIO5"}]}
    message = failed(check(write_config(tmp_path, config)))
    assert "  occupancy: rooms.1.pin 5 is already used by rooms.0\n" in message


@pytest.mark.parametrize("name", ["BOARD11", "J8:11", "GPIO28", -1])
def test_only_bcm_numbers_name_a_pin(tmp_path, name):
    config = edge_config_dict(tmp_path)
    config["door"]["led"] = {"pin": name}
    assert "door.led.pin" in failed(check(write_config(tmp_path, config)))


# --- load-acl -------------------------------------------------------------------------------------


def acl_file(tmp_path: Path, version: int = 1, site: str = "leipzig-ost", cards=None) -> Path:
    doc = {
        "site": site,
        "version": version,
        "plans": [{"id": "flex"}],
        "members": [{"id": "m1", "grants": [{"plan": "flex"}]}],
        "cards": cards
        if cards is not None
        else [{"uid": "04A1B2C3D4E5F6", "member": "m1"}, {"uid": "DEADBEEF", "member": "m1"}],
    }
    path = tmp_path / f"acl-{version}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def load_acl(tmp_path: Path, path: Path):
    return run("load-acl", str(path), "--config", str(write_config(tmp_path)))


def stored_version(tmp_path: Path) -> int:
    store = EdgeStore(tmp_path / "edge.db")
    try:
        return applied_version(store)
    finally:
        store.close()


def test_load_acl_applies(tmp_path):
    result = load_acl(tmp_path, acl_file(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "applied access list version 1: 2 cards\n"
    assert stored_version(tmp_path) == 1


def test_load_acl_twice_is_refused(tmp_path):
    path = acl_file(tmp_path)
    assert load_acl(tmp_path, path).exit_code == 0
    message = failed(load_acl(tmp_path, path), code=1)
    assert message == f"{path}: refused: version 1 is not newer than applied version 1\n"
    assert stored_version(tmp_path) == 1


def test_load_acl_newer_version(tmp_path):
    assert load_acl(tmp_path, acl_file(tmp_path, version=1)).exit_code == 0
    result = load_acl(tmp_path, acl_file(tmp_path, version=2, cards=[]))
    assert (result.exit_code, result.stdout) == (0, "applied access list version 2: 0 cards\n")
    assert stored_version(tmp_path) == 2


def test_load_acl_for_another_site_is_refused(tmp_path):
    message = failed(load_acl(tmp_path, acl_file(tmp_path, site="halle-mitte")), code=1)
    assert "refused: the list is for site 'halle-mitte', this device is at 'leipzig-ost'" in message
    assert stored_version(tmp_path) == 0


def test_load_acl_invalid_uid_is_refused(tmp_path):
    path = acl_file(tmp_path, cards=[{"uid": "04A1B2", "member": "m1"}])
    message = failed(load_acl(tmp_path, path), code=1)
    assert "refused: a card's uid is invalid: a card UID has 4, 7, 8 or 10 bytes" in message
    assert stored_version(tmp_path) == 0


def test_load_acl_into_a_damaged_store_says_so_and_changes_nothing(tmp_path):
    assert load_acl(tmp_path, acl_file(tmp_path, version=1)).exit_code == 0
    store_file = tmp_path / "edge.db"
    damaged = b"\0" * 100 + store_file.read_bytes()[100:]  # a zeroed header
    store_file.write_bytes(damaged)
    message = failed(load_acl(tmp_path, acl_file(tmp_path, version=2)), code=1)
    assert "the store is damaged" in message and "hafen edge run" in message
    assert store_file.read_bytes() == damaged


def test_load_acl_malformed_json(tmp_path):
    path = tmp_path / "acl.json"
    path.write_text('{"site": "leipzig-ost", "version": 1,', encoding="utf-8")
    message = failed(load_acl(tmp_path, path))
    assert message.startswith(f"{path}: Expecting property name enclosed in double quotes")
    assert stored_version(tmp_path) == 0


def test_load_acl_invalid_document(tmp_path):
    path = acl_file(tmp_path, cards=[{"uid": "04A1B2C3D4E5F6", "member": "m2"}])
    message = failed(load_acl(tmp_path, path))
    assert message.startswith(f"{path}: invalid config\n")
    assert "a card belongs to unknown member m2" in message


def test_load_acl_missing_file(tmp_path):
    path = tmp_path / "missing.json"
    message = failed(load_acl(tmp_path, path))
    assert message.startswith(f"{path}: ")
    assert "No such file or directory" in message


def test_load_acl_with_bad_config(tmp_path):
    config = edge_config_dict(tmp_path)
    config["door"]["unlok_seconds"] = 1
    config_path = write_config(tmp_path, config)
    result = run("load-acl", str(acl_file(tmp_path)), "--config", str(config_path))
    assert "door.unlok_seconds: unknown key" in failed(result)
    assert not (tmp_path / "edge.db").exists()


def test_load_acl_duplicate_card_is_refused(tmp_path):
    same = ["04A1B2C3D4E5F6", "04:a1:b2:c3:d4:e5:f6"]
    cards = [{"uid": uid, "member": "m1"} for uid in same]
    message = failed(load_acl(tmp_path, acl_file(tmp_path, cards=cards)), code=1)
    assert "refused" in message


def test_the_door_hardware_settings_alone_refuse_two_parts_on_one_pin():
    """Whoever builds the driver's settings (not only the agent's config) gets the clash."""
    from pydantic import ValidationError

    from edge.drivers.door_settings import DoorHardwareSettings

    with pytest.raises(ValidationError, match=r"led\.pin 17 is already used by strike"):
        DoorHardwareSettings.model_validate({"strike": {"pin": 17}, "led": {"pin": "BCM17"}})


def test_home_assistant_discovery_is_refused_on_the_networks_broker(tmp_path):
    """The network's broker drops a door that publishes outside its own topics: with
    discovery on, the door would lose its link on every connection."""
    raw = edge_config_dict(tmp_path)
    raw["hub"] = {"public_keys": ["WAIGItqD+Q+p7KxQKUaL8x/nGdxG/q7419gYeCypkuI="]}
    raw["occupancy"] = {"home_assistant": {"enabled": True}}
    raw["mqtt"] = {"host": "localhost"}  # a broker of the site's own: fine
    validate_config(raw, EdgeConfig)
    raw["mqtt"] = {
        "host": "hub.example.org", "port": 8883, "ca_file": "/etc/hafen/tls/ca.crt",
        "cert_file": "/etc/hafen/tls/device.crt", "key_file": "/etc/hafen/tls/device.key",
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"occupancy\.home_assistant"):
        validate_config(raw, EdgeConfig)
