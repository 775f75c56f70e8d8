"""Configuration: embedded defaults, a site file over them, flags over both, clear errors."""

from pathlib import Path

import pytest

from hotline.cli import apply_flags, build_parser, main
from hotline.config import ConfigError, load_config, validate


def site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_the_embedded_defaults_are_a_working_one_machine_setup():
    config = load_config()
    validate(config)
    assert (config.sip.port, config.http.port, config.media.rtp_port_range) == (
        5060,
        8080,
        (20000, 29999),
    )
    assert config.data_dir == "./var"
    assert {agent.username for agent in config.agents} >= {"nurse1", "pharmacy1"}


def test_a_site_file_overlays_only_what_it_names(tmp_path: Path):
    config = load_config(site(tmp_path, "sip:\n  port: 5070\n  registration:\n    burst: 7\n"))
    assert config.sip.port == 5070
    assert config.sip.registration.burst == 7
    assert config.sip.registration.min_expires_s == 60  # still the default
    assert config.sip.transports == ["udp", "tcp"]


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        ("sip:\n  port: abc\n", 2, "sip.port", "expected an integer, got 'abc'"),
        ("sip:\n  prot: 5060\n", 2, "sip.prot", "unknown field"),
        ("media:\n  rtp_ports: [1, 2]\n", 2, "media.rtp_ports", "expected a string"),
        ("agents:\n  - username: a\n", 2, "agents[0]", "missing required field(s): password"),
        ("sip:\n  port: 1\n  port: 2\n", 3, "sip.port", "given twice"),
        ("sip: [\n", 2, "", "not valid YAML"),
        (
            "routing:\n  queues:\n    - name: q\n      strategy: fastest\n",
            3,
            "routing.queues[0]",
            "strategy: 'fastest' is none of longest-idle",
        ),
        (
            "agents:\n  - username: a\n    password: b\n    skills: {x: 11}\n",
            2,
            "agents[0]",
            "skills.x: level 11 is not 1..10",
        ),
        (
            "agents:\n  - username: a\n    password: b\n    skills: [x]\n",
            4,
            "agents[0].skills",
            "expected a mapping",
        ),
        (
            "agents:\n  - username: a\n    password: b\n    skills: {x: high}\n",
            4,
            "agents[0].skills.x",
            "expected an integer, got 'high'",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, problem: str
):
    path = site(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: ")
    assert field in message and problem in message


def test_cross_field_checks_name_the_field():
    config = load_config()
    config.media.rtp_ports = "30000-20000"
    with pytest.raises(ConfigError, match="media.rtp_ports"):
        validate(config)
    config = load_config()
    config.sip.digest_algorithms = ["SHA-512-256"]
    with pytest.raises(ConfigError, match="sip.digest_algorithms"):
        validate(config)
    config = load_config()
    config.media.codecs = ["PCMU", "G729"]
    with pytest.raises(ConfigError, match="media.codecs: unknown codec 'G729'"):
        validate(config)


def test_the_default_codecs_are_g711_then_wideband():
    assert load_config().media.codecs == ["PCMU", "PCMA", "G722", "opus"]


def test_flags_override_the_file(tmp_path: Path):
    args = build_parser().parse_args(
        [
            "serve",
            "--sip-port",
            "5099",
            "--rtp-ports",
            "40000-40999",
            "--data-dir",
            str(tmp_path),
            "--max-calls",
            "3",
            "--http-port",
            "8099",
        ]
    )
    config = apply_flags(load_config(site(tmp_path, "sip:\n  port: 5070\n")), args)
    assert (config.sip.port, config.media.rtp_ports, config.sip.max_calls) == (
        5099,
        "40000-40999",
        3,
    )
    assert (config.data_dir, config.http.port) == (str(tmp_path), 8099)


def test_serve_exits_2_with_the_message_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = site(tmp_path, "sip:\n  max_calls: many\n")
    assert main(["serve", "--config", str(path)]) == 2
    assert f"{path}:2: sip.max_calls: expected an integer" in capsys.readouterr().err


def test_every_serve_option_is_documented_in_help(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--config",
        "--sip-port",
        "--http-port",
        "--rtp-ports",
        "--data-dir",
        "--max-calls",
        "--drain-timeout",
    ):
        assert option in text


def test_recordings_and_redaction_sections_parse_and_bad_values_name_the_place(tmp_path: Path):
    from hotline.config import node_name, recordings_dir, redaction_policy

    config = load_config()
    assert recordings_dir(config) == Path("./var/recordings")
    assert (config.recordings.retention_days, config.recordings.workers) == (90.0, 1)
    assert node_name(config)  # the host name
    policy = redaction_policy(config)
    assert policy.enabled and policy.id_patterns == (r"\b\d{3}-\d{2}-\d{4}\b",)
    text = (
        "recordings:\n  dir: /mnt/shared/recordings\n  retention_days: null\n"
        "  backend: vosk\n  model_path: /opt/vosk-en\n  node: node-a\n"
        "redaction:\n  phones: false\n  id_patterns: ['\\bMRN\\d{6}\\b']\n"
    )
    config = load_config(site(tmp_path, text))
    assert recordings_dir(config) == Path("/mnt/shared/recordings")
    assert config.recordings.retention_days is None and node_name(config) == "node-a"
    assert (config.recordings.backend, config.recordings.model_path) == ("vosk", "/opt/vosk-en")
    policy = redaction_policy(config)
    assert not policy.phones and policy.id_patterns == (r"\bMRN\d{6}\b",)
    for bad, line, field, problem in (
        ("recordings:\n  workers: 0\n", 2, "recordings", "workers: must be 1..64"),
        ("recordings:\n  retention_days: 0\n", 2, "recordings", "retention_days: must be positive"),
        ("recordings:\n  lease_s: 1\n", 2, "recordings", "lease_s: must be 5 or more"),
        ("recordings:\n  backend: whisper\n", 2, "recordings", "backend: unknown recognizer"),
        (
            "recordings:\n  retention_days: soon\n",
            2,
            "recordings.retention_days",
            "expected a number",
        ),
        ("redaction:\n  id_patterns: ['(']\n", 2, "redaction", "id_patterns[0]: not a regular"),
        ("redaction:\n  cards: maybe\n", 2, "redaction.cards", "expected true or false"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(site(tmp_path, bad))
        error = caught.value
        assert (error.line, error.field_path) == (line, field), bad
        assert error.problem.startswith(problem), error.problem
        assert str(error).startswith(f"{tmp_path / 'site.yaml'}:{line}: {field}: ")
