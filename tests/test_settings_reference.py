"""docs/configuration.md is generated from the settings model and kept in sync; every setting
has a description to generate it from. No servers; well under a second."""

from worker.settings import Settings
from worker.settings_reference import REFERENCE_PATH, components, render


def test_the_configuration_reference_is_in_sync() -> None:
    assert REFERENCE_PATH.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `python -m worker.settings_reference`"
    )


def test_every_setting_is_in_the_reference_with_a_description() -> None:
    listed = {v.name: v for _, _, rows in components() for v in rows}
    from_env = Settings().to_env()  # the names the model itself writes for a child process
    assert set(from_env) <= set(listed)
    assert [name for name, v in listed.items() if not v.description] == []
    assert "`CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS`" in render()
