"""Configuration: TOML file, then EDGE_TRIAGE_* environment, then command line; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.service.config import DEFAULT_MODEL_DIR, ConfigError, ServiceConfig, load_config


def test_defaults_are_loopback_and_the_shipped_bundle() -> None:
    config = load_config(env={})
    assert config.host == "127.0.0.1" and config.model_dir == DEFAULT_MODEL_DIR
    assert config.deadline_min_ms <= config.deadline_ms <= config.deadline_max_ms


def test_file_then_environment_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('port = 9000\nthreads = 2\ndeadline_ms = 400.0\n[policy]\nwarm_c = 65.0\n')
    env = {"EDGE_TRIAGE_PORT": "9100", "EDGE_TRIAGE_MODEL": "/opt/bundle", "EDGE_TRIAGE_DEADLINE_MS": "300",
           "EDGE_TRIAGE_TOKEN_FILE": "", "UNRELATED": "x"}
    config = load_config(path, env=env, overrides={"port": 9200, "host": None})
    assert config.port == 9200 and config.threads == 2 and config.deadline_ms == 300.0
    assert config.model_dir == "/opt/bundle" and config.token_file is None and config.host == "127.0.0.1"
    assert config.policy == {"warm_c": 65.0}


@pytest.mark.parametrize("text, code, field", [
    ("prot = 1\n", "config_unknown_key", "prot"),
    ("port = 'eighty'\n", "config_invalid", "port"),
    ("port = 70000\n", "config_invalid", "port"),
    ("threads = 0\n", "config_invalid", "threads"),
    ("deadline_ms = 10.0\n", "config_invalid", "deadline_ms"),
    ("audit_synchronous = 'OFF'\n", "config_invalid", "audit_synchronous"),
    ("policy = 3\n", "config_invalid", "policy"),
    ("port = [\n", "config_unparsable", None),
])
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, code: str, field: str | None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert error.value.code == code and error.value.field == field and str(path) in error.value.message \
        or error.value.code == code and error.value.field == field


def test_bad_environment_value_names_the_source() -> None:
    with pytest.raises(ConfigError, match="environment") as error:
        load_config(env={"EDGE_TRIAGE_WORKERS": "many"})
    assert error.value.field == "workers"


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "nope.toml", env={})
    assert error.value.code == "config_not_found"


def test_validate_normalises_synchronous() -> None:
    assert ServiceConfig(audit_synchronous="full").validate().audit_synchronous == "FULL"


def test_example_config_in_systemd_loads() -> None:
    example = Path(__file__).resolve().parents[1] / "systemd" / "config.toml.example"
    if not example.is_file():
        pytest.skip("no example config")
    assert load_config(example, env={}).host == "127.0.0.1"


@pytest.mark.parametrize("text, code, field", [
    ("[policy]\nwarm_cc = 60.0\n", "config_unknown_key", "policy.warm_cc"),
    ("[policy]\ncgroup_critical_fraction = 1.5\n", "config_invalid", "policy.cgroup_critical_fraction"),
    ("[policy]\nwarm_c = 'hot'\n", "config_invalid", "policy.warm_c"),
    ("[policy]\nblind_state = 'tepid'\n", "config_invalid", "policy.blind_state"),
    ("[policy]\nwarm_c = 90.0\n", "config_invalid", "policy.hot_c"),
    ("[monitor]\ninterval = 1.0\n", "config_unknown_key", "monitor.interval"),
    ("[monitor]\ncommand_timeout_s = 0\n", "config_invalid", "monitor.command_timeout_s"),
    ("[monitor]\nthrottle_command = 'vcgencmd'\n", "config_invalid", "monitor.throttle_command"),
    ("[web]\nqueue_size = 0\n", "config_invalid", "web.queue_size"),
])
def test_table_typos_and_out_of_range_values_fail_at_start_naming_the_key(tmp_path: Path, text: str, code: str,
                                                                          field: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert error.value.code == code and error.value.field == field and field in error.value.message
