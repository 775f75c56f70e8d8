"""Call routing (issue 6) with real softphones as agents: the ACD offers each call to an agent.

After the speech IVR picks a queue, hotline's B2BUA sends an INVITE to a
registered agent's softphone, with the context in its headers (``Call-Info`` link
to the conversation, ``X-Hotline-Intent``, ``-Queue``, ``-Customer``,
``-Transcript``, ``-Confidence``), and bridges the caller's media to the agent.

The agents are pjsua2 phones (``agent_phones.py``, several accounts in one
process, each with its own transport, tone and recorder) and baresip
(``baresip_agent.py``). Callers are either ``hotline call``'s own UAC
(``place_call``) saying committed corpus recordings, which the IVR routes by
intent, or a pjsua2 phone that presses 0 (the operator queue, at once, no
recognizer involved) and plays a tone so that what each side hears can be told
apart.

One ``hotline serve`` with the speech IVR serves the whole module (it takes tens
of seconds to start); each test registers its own agents and queues, and its
phones unregister at the end, so the tests do not see each other's agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import load_corpus, read_wav_8k
from tests.integration.baresip_agent import BaresipAgent, baresip_missing
from tests.integration.helpers import (
    LOOPBACK,
    AgentPhones,
    HotlineProcess,
    free_port,
    free_port_range,
    header_value,
    phone_spec,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("pjsua2") is None,
        reason="pjsua2 is not installed (pip package pjsua2-python; `make test` installs it)",
    ),
    pytest.mark.timeout(300),
]

YES_WAV = Path(__file__).resolve().parents[1] / "data" / "asr" / "en_yes.wav"
RING_TIMEOUT_S = 6.0  # the operator queue's; a rejected call must move on well before it
MAX_WAIT_S = 6.0  # billing's, then it overflows to general
TONE_TOLERANCE_HZ = 15.0

# Skills and queues per test, so that no test's call can reach another test's agent.
ROUTING_YAML = f"""
sip:
  digest_algorithms: [MD5]   # baresip 1.0 gives up on a SHA-256 challenge (test_baresip.py)
agents:
  # each call rings the agent with the matching skill
  - {{username: alice, password: alice-secret, display_name: Alice,
      skills: {{pharmacy: 5}}, queues: [pharmacy], max_calls: 1}}
  - {{username: bob, password: bob-secret, skills: {{appointments: 5}}, queues: [appointments]}}
  - {{username: carol, password: carol-secret, skills: {{billing: 5}}, queues: [billing]}}
  # ring timeout, reject, caller hang-up, media, transfers: the operator queue (key 0)
  - {{username: dora, password: dora-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: eric, password: eric-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: fay, password: fay-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: gus, password: gus-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: hal, password: hal-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: kim, password: kim-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: lee, password: lee-secret}}            # a transfer target, in no queue
  - {{username: max, password: max-secret, skills: {{operator: 3}}, queues: [operator]}}
  - {{username: ned, password: ned-secret}}            # consulted, then takes the caller
  - {{username: oli, password: oli-secret, skills: {{operator: 3}}, queues: [operator]}}
  # overflow: billing has nobody then, general has pat
  - {{username: pat, password: pat-secret, skills: {{general: 1}}, queues: [general]}}
routing:
  queues:
    - {{name: pharmacy, strategy: longest-idle, required_skills: {{pharmacy: 1}},
        ring_timeout_s: 8, wrap_up_s: 0}}
    - {{name: appointments, strategy: longest-idle, required_skills: {{appointments: 1}},
        ring_timeout_s: 8, wrap_up_s: 0}}
    - {{name: billing, strategy: longest-idle, required_skills: {{billing: 1}},
        ring_timeout_s: 8, max_wait_s: {MAX_WAIT_S}, overflow_to: general, wrap_up_s: 0}}
    - {{name: general, strategy: longest-idle, ring_timeout_s: 8, wrap_up_s: 0}}
    - {{name: operator, strategy: longest-idle, required_skills: {{operator: 1}},
        ring_timeout_s: {RING_TIMEOUT_S}, wrap_up_s: 0}}
"""

TONES_HZ = {"caller": 500.0, "first": 900.0, "second": 1100.0}


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def routing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HotlineProcess]:
    server = HotlineProcess(
        tmp_path_factory.mktemp("routing"), ivr=True, rtp_range_size=300,
        config_yaml=ROUTING_YAML,
    )
    server.start(ready_timeout_s=120.0)
    yield server
    server.stop(timeout_s=10)
    print(f"--- {server.log_path} (tail) ---\n{server.log_text()[-6000:]}")


@pytest.fixture
async def phones_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """Start ``AgentPhones`` processes against a server; each is quit (killed at worst) after."""
    started: list[AgentPhones] = []

    async def start(server_port: int, specs: list[dict[str, object]], name: str) -> AgentPhones:
        phones = AgentPhones(server_port, specs, tmp_path / name)
        started.append(phones)
        return await phones.start()

    yield start
    for phones in started:
        await phones.stop()
        print(phones.describe())


def agent(username: str, behaviour: str = "ignore", tone: str = "first") -> dict[str, object]:
    return phone_spec(username, f"{username}-secret", behaviour=behaviour, tone_hz=TONES_HZ[tone])


def caller(number: str) -> dict[str, object]:
    return phone_spec(number, register=False, tone_hz=TONES_HZ["caller"])


def hotline_uri(server: HotlineProcess) -> str:
    return f"sip:hotline@{LOOPBACK}:{server.sip_port}"


async def dial_operator(callers: AgentPhones, number: str, server: HotlineProcess) -> str:
    """A pjsua2 caller calls the hotline and presses 0: the operator queue, no recognizer."""
    call = await callers.call(number, hotline_uri(server))
    await callers.expect("media_active", call=call, timeout_s=10)
    await asyncio.sleep(1.0)  # into the greeting, as a person would
    await callers.dtmf(call, "0")
    return call


def corpus_speech(text: str) -> Any:
    """The committed recording of ``text`` (hibari voice), as a caller's first step."""
    from hotline.caller import Step

    item = next(i for i in load_corpus() if i.voice == "hibari-heart" and i.text == text)
    return Step(audio=read_wav_8k(item.path), label=text)


def says(text: str) -> list[Any]:
    """Say ``text``; then "yes", should the IVR read back its guess."""
    from hotline.caller import Step

    return [corpus_speech(text), Step(audio=read_wav_8k(YES_WAV), label="yes")]


@pytest.fixture
async def speaking(routing_server: HotlineProcess) -> AsyncIterator[Any]:
    """Start ``hotline call``'s UAC saying a text (``hotline call --say ... --stay S``).

    ``place_call`` cannot be hung up from outside, and a cancelled one leaves its
    call up on the server without a BYE. So each caller is awaited at teardown
    (it ends by itself ``stay_s`` after the answer at the latest): a caller of a
    failed test must not wait on in a queue and reach the next test's agents.
    """
    from hotline.caller import place_call

    tasks: list[asyncio.Task[dict[str, Any]]] = []

    def start(text: str, number: str, stay_s: float = 40.0) -> asyncio.Task[dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(place_call(
            hotline_uri(routing_server), says(text), from_number=number,
            api_url=f"http://{LOOPBACK}:{routing_server.http_port}", timeout_s=60.0,
            stay_s=stay_s,
        ))
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), 100.0)
    wait_until(lambda: routing_server.health()[1].get("active_calls") == 0, 10.0)


def ivr_outcomes(server: HotlineProcess) -> str:
    """The server's IVR outcome lines: what it heard and where it sent each call."""
    return "\n".join(line for line in server.log_text().splitlines() if "IVR outcome" in line)


async def expect_ring(
    phones: AgentPhones, server: HotlineProcess, *, timeout_s: float, **match: object
) -> dict[str, Any]:
    """An ``incoming`` event; when none comes, say what the IVR decided (a misheard caller
    goes to another queue, which is not the ACD's fault)."""
    try:
        return await phones.expect("incoming", timeout_s=timeout_s, **match)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- IVR outcomes ---\n{ivr_outcomes(server)}") from None


async def finish(task: asyncio.Task[dict[str, Any]], timeout_s: float = 15.0) -> dict[str, Any]:
    """The caller's result; it must have ended by itself within ``timeout_s``."""
    try:
        return await asyncio.wait_for(task, timeout_s)
    except TimeoutError:
        raise AssertionError(f"the caller did not finish in {timeout_s} s") from None


def header(event: dict[str, Any], name: str) -> str:
    value = header_value(event["headers"], name)
    assert value is not None, f"the INVITE has no {name}:\n{event['msg']}"
    return value


def assert_context(invite: dict[str, Any], server: HotlineProcess, *, customer: str,
                   queue: str, intent: str | None) -> None:
    """The INVITE to an agent: From is the caller, and the context headers are there.

    ``intent`` None: the caller pressed 0, so the IVR recognised no intent (and
    heard nothing to put in a transcript); those headers are not checked.
    """
    msg = invite["msg"]
    assert f"sip:{customer}@" in header(invite, "From"), msg
    assert header(invite, "X-Hotline-Customer") == customer, msg
    assert header(invite, "X-Hotline-Queue") == queue, msg
    if intent is not None:
        assert header(invite, "X-Hotline-Intent") == intent, msg
        confidence = float(header(invite, "X-Hotline-Confidence"))
        assert 0.0 <= confidence <= 1.0, msg
    call_info = header(invite, "Call-Info")
    link = re.fullmatch(
        rf"<http://{re.escape(LOOPBACK)}:{server.http_port}/api/conversations/([^>\s]+)>"
        r"\s*;\s*purpose=info", call_info,
    )
    assert link, f"Call-Info {call_info!r} does not link to the conversation\n{msg}"


def assert_same_context(invite: dict[str, Any], original: dict[str, Any]) -> None:
    """A transferred (or consulted) call's INVITE carries the caller's context along.

    The queue may differ (a transfer to an agent is not a queue's call); the caller,
    the conversation and what the IVR learnt stay the same.
    """
    for name in ("X-Hotline-Customer", "Call-Info", "X-Hotline-Intent", "X-Hotline-Transcript"):
        was = header_value(original["headers"], name)
        assert header_value(invite["headers"], name) == was, (
            f"{name} was {was!r} on the first offer:\n{invite['msg']}"
        )
    assert header(invite, "X-Hotline-Customer") in header(invite, "From"), invite["msg"]


def conversation_link(invite: dict[str, Any]) -> str:
    return header(invite, "Call-Info").split(">")[0].lstrip("<")


def near(measured: object, expected_hz: float) -> bool:
    return measured is not None and abs(float(measured) - expected_hz) <= TONE_TOLERANCE_HZ  # type: ignore[arg-type]


async def hears(phones: AgentPhones, call: str, listen_s: float = 2.0) -> dict[str, Any]:
    """What ``call`` hears over the next ``listen_s`` (earlier audio left out)."""
    await phones.measure(call)
    await asyncio.sleep(listen_s)
    return await phones.measure(call)


# ------------------------------------------------- the harness, against today's server


async def test_agent_phone_harness_registers_and_answers(tmp_path: Path, phones_factory: Any):
    """The phones themselves, against ``HotlineServer.call_agent`` (no routing needed).

    pjsua2 agents register with digest auth; each rings on our INVITE with the
    header set reported; an auto-answering one answers and hears the greeting
    tone; an ignoring one is cancelled when we give up; a rejecting one answers
    486. baresip registers, auto-answers and reports the INVITE it got.
    """
    from hotline.config import AgentConfig, load_config
    from hotline.server import HotlineServer

    config = load_config()
    config.sip.host, config.sip.port = LOOPBACK, free_port()
    config.sip.digest_algorithms = ["MD5"]
    low, high = free_port_range(40)
    config.media.rtp_ports = f"{low}-{high}"
    config.data_dir = str(tmp_path / "data")
    config.ivr.enabled = False
    config.agents = [AgentConfig(name, f"{name}-secret") for name in ("alice", "bob", "carol")]
    server: Any = HotlineServer(config)
    await server.start()
    carol = None
    try:
        phones = await phones_factory(config.sip.port, [
            agent("alice", "auto-answer", "first"), agent("bob", "ignore", "second"),
        ], "phones")
        # Auto-answer: rings, answers, hears our 440 Hz greeting tone; we hang up.
        call = await server.call_agent("alice", timeout_s=10)
        ring = await phones.expect("incoming", account="alice")
        assert header(ring, "CSeq").endswith("INVITE") and ring["msg"].startswith("INVITE ")
        assert ring["request_uri"].startswith("sip:alice@127.0.0.1:")
        await phones.expect("answered", account="alice", call=ring["call"])
        heard = await hears(phones, ring["call"], 1.5)
        assert near(heard["dominant_hz"], config.media.greeting_tone_hz), heard
        server.hangup(call)
        gone = await phones.expect("disconnected", call=ring["call"])
        assert gone["answered"] is True

        # Ignore: rings until we give up and CANCEL.
        with pytest.raises(TimeoutError):
            await server.call_agent("bob", timeout_s=1.5)
        ring = await phones.expect("incoming", account="bob")
        await phones.expect("cancelled", call=ring["call"], timeout_s=5)

        # Reject: the same phone, told to answer 486 from now on.
        await phones.behaviour("bob", "reject 486")
        with pytest.raises(ConnectionRefusedError):
            await server.call_agent("bob", timeout_s=5)
        ring = await phones.expect("incoming", account="bob")
        gone = await phones.expect("disconnected", call=ring["call"])
        assert (gone["code"], gone["answered"]) == (486, False)
        assert not phones.seen("cancelled", call=ring["call"])

        # baresip: registers, auto-answers, says which INVITE it got; it hangs up.
        if baresip_missing() is None:
            carol = await BaresipAgent(tmp_path / "carol", server_port=config.sip.port,
                                       username="carol", password="carol-secret").start()
            call = await server.call_agent("carol", timeout_s=10)
            assert await carol.wait_for(lambda: carol.established() == 1, 5), carol.describe()
            (invite,) = carol.invites()
            assert invite.header("To") == f"<sip:carol@{LOOPBACK}>", invite.raw
            await carol.command("hangup")
            await asyncio.wait_for(call.ended.wait(), 5)

        # quit: the phones unregister and tear PJSIP down cleanly.
        assert await phones.stop() == 0, phones.describe()
        assert sorted(e["account"] for e in phones.seen("unregistered")) == ["alice", "bob"]
    finally:
        if carol is not None:
            await carol.stop()
        await server.stop()


# ---------------------------------------------------------------- routing


async def test_each_call_rings_an_agent_with_the_matching_skill(
    routing_server: HotlineProcess, phones_factory: Any, speaking: Any, tmp_path: Path
):
    reason = baresip_missing()
    if reason:
        pytest.skip(reason)
    server = routing_server
    phones = await phones_factory(server.sip_port, [
        agent("alice", "ignore", "first"), agent("bob", "ignore", "second"),
    ], "agents")
    carol = await BaresipAgent(tmp_path / "carol", server_port=server.sip_port,
                               username="carol", password="carol-secret", tone_hz=1300).start()
    try:
        calls = [  # (who calls, what they say, the queue and agent it must reach)
            ("+15551230001", "I have a question about my medication", "pharmacy", "alice"),
            ("+15551230002", "I want to book an appointment", "appointments", "bob"),
            ("+15551230003", "I have a question about my bill", "billing", "carol"),
        ]
        for number, text, queue, agent_name in calls:
            talking = speaking(text, number)
            if agent_name == "carol":
                assert await carol.wait_for(lambda: carol.established() == 1, 45), (
                    f"baresip carol never took the {queue} call\n{carol.describe()}\n"
                    f"--- IVR outcomes ---\n{ivr_outcomes(server)}"
                )
                (invite,) = carol.invites()
                assert f"sip:{number}@" in (invite.header("From") or ""), invite.raw
                assert invite.header("X-Hotline-Queue") == queue, invite.raw
                assert invite.header("X-Hotline-Customer") == number, invite.raw
                await carol.command("hangup")
            else:
                ring = await expect_ring(phones, server, timeout_s=45)
                assert ring["account"] == agent_name, (
                    f"a {queue} call rang {ring['account']}, not {agent_name}"
                )
                assert_context(ring, server, customer=number, queue=queue, intent=queue)
                transcript = header(ring, "X-Hotline-Transcript").lower()
                assert {"medication", "appointment"} & set(transcript.split()), ring["msg"]
                await phones.answer(ring["call"])
                await phones.expect("answered", call=ring["call"])
                await phones.hangup(ring["call"])
            result = await finish(talking)
            assert result.get("queue") == queue, f"the IVR misrouted (not the ACD): {result}"
        # Nobody got a call meant for another queue.
        assert len(phones.seen("incoming")) == 2, phones.describe()
        assert len(carol.invites()) == 1, carol.describe()
    finally:
        await carol.stop()


async def test_unanswered_call_moves_to_the_next_agent_after_the_ring_timeout(
    routing_server: HotlineProcess, phones_factory: Any
):
    server = routing_server
    agents = await phones_factory(server.sip_port, [
        agent("dora", "ignore", "first"), agent("eric", "ignore", "second"),
    ], "agents")
    callers = await phones_factory(server.sip_port, [caller("+15551230004")], "caller")
    await dial_operator(callers, "+15551230004", server)

    first = await agents.expect("incoming", timeout_s=30)
    assert_context(first, server, customer="+15551230004", queue="operator", intent=None)
    cancel = await agents.expect("cancelled", call=first["call"], timeout_s=RING_TIMEOUT_S + 5)
    rang_s = cancel["t"] - first["t"]
    assert RING_TIMEOUT_S - 1.0 <= rang_s <= RING_TIMEOUT_S + 3.0, f"rang {rang_s:.1f} s"

    second = await agents.expect("incoming", timeout_s=5)
    assert second["account"] != first["account"], "the missed agent was rung again first"
    assert_context(second, server, customer="+15551230004", queue="operator", intent=None)
    assert conversation_link(second) == conversation_link(first)
    await agents.answer(second["call"])
    await agents.expect("answered", call=second["call"])
    # The missed agent is paused: it is not offered the call again while it is up.
    assert len(agents.seen("incoming", account=first["account"])) == 1, agents.describe()


async def test_rejected_call_moves_to_the_next_agent(
    routing_server: HotlineProcess, phones_factory: Any
):
    server = routing_server
    agents = await phones_factory(server.sip_port, [
        agent("fay", "ignore", "first"), agent("gus", "ignore", "second"),
    ], "agents")
    callers = await phones_factory(server.sip_port, [caller("+15551230005")], "caller")
    await dial_operator(callers, "+15551230005", server)

    first = await agents.expect("incoming", timeout_s=30)
    await agents.reject(first["call"], 486)
    gone = await agents.expect("disconnected", call=first["call"])
    assert gone["code"] == 486
    # The next agent rings at once, not after the ring timeout.
    second = await agents.expect("incoming", timeout_s=RING_TIMEOUT_S - 2)
    assert second["account"] != first["account"]
    assert second["t"] - gone["t"] < RING_TIMEOUT_S - 2
    assert_context(second, server, customer="+15551230005", queue="operator", intent=None)
    await agents.answer(second["call"])
    await agents.expect("answered", call=second["call"])


async def test_caller_hanging_up_while_the_agent_rings_cancels_the_agent_leg(
    routing_server: HotlineProcess, phones_factory: Any
):
    server = routing_server
    agents = await phones_factory(server.sip_port, [agent("hal", "ignore")], "agents")
    callers = await phones_factory(server.sip_port, [caller("+15551230006")], "caller")
    call = await dial_operator(callers, "+15551230006", server)

    ring = await agents.expect("incoming", account="hal", timeout_s=30)
    await callers.hangup(call)
    await callers.expect("disconnected", call=call)
    # Well before the ring timeout: the agent leg was cancelled because the caller left.
    cancel = await agents.expect("cancelled", call=ring["call"], timeout_s=RING_TIMEOUT_S - 2)
    assert cancel["t"] - ring["t"] < RING_TIMEOUT_S - 1
    assert not agents.seen("answered")
    assert wait_until(lambda: server.health()[1].get("active_calls") == 0, 5.0), server.health()


async def test_call_overflows_to_another_queue_after_max_wait(
    routing_server: HotlineProcess, phones_factory: Any, speaking: Any
):
    server = routing_server
    # Nobody serves billing now (carol is gone); pat serves general.
    agents = await phones_factory(server.sip_port, [agent("pat", "ignore")], "agents")
    talking = speaking("I have a question about my bill", "+15551230007")

    ring = await expect_ring(agents, server, account="pat", timeout_s=45 + MAX_WAIT_S)
    assert_context(ring, server, customer="+15551230007", queue="general", intent="billing")
    await agents.answer(ring["call"])
    await agents.expect("answered", call=ring["call"])
    await agents.hangup(ring["call"])
    result = await finish(talking)
    assert result.get("queue") == "billing", f"the IVR misrouted (not the ACD): {result}"


@pytest.mark.parametrize(("target", "taker"), [("lee", "lee"), ("general", "pat")],
                         ids=["to-an-agent", "to-a-queue"])
async def test_blind_transfer_rings_the_target_with_the_context(
    routing_server: HotlineProcess, phones_factory: Any, target: str, taker: str
):
    server = routing_server
    number = "+15551230008" if target == "lee" else "+15551230011"
    agents = await phones_factory(server.sip_port, [
        agent("kim", "ignore", "first"), agent(taker, "ignore", "second"),
    ], "agents")
    callers = await phones_factory(server.sip_port, [caller(number)], "caller")
    from_caller = await dial_operator(callers, number, server)

    offered = await agents.expect("incoming", account="kim", timeout_s=30)
    await agents.answer(offered["call"])
    await agents.expect("answered", call=offered["call"])
    # REFER, Refer-To: <sip:lee@domain> (an agent) or <sip:general@domain> (a queue).
    await agents.xfer(offered["call"], f"sip:{target}@{LOOPBACK}")

    ring = await agents.expect("incoming", account=taker, timeout_s=10)
    assert_same_context(ring, offered)
    await agents.answer(ring["call"])
    await agents.expect("answered", call=ring["call"])
    done = await agents.expect("transfer_result", call=offered["call"], final=True, timeout_s=10)
    assert 200 <= done["code"] < 300, done
    # kim is out of the call, and the caller now talks with lee.
    await agents.expect("disconnected", call=offered["call"], timeout_s=10)
    heard = await hears(callers, from_caller)
    assert near(heard["dominant_hz"], TONES_HZ["second"]), heard


async def test_attended_transfer_connects_the_caller_to_the_consulted_agent(
    routing_server: HotlineProcess, phones_factory: Any
):
    server = routing_server
    agents = await phones_factory(server.sip_port, [
        agent("max", "ignore", "first"), agent("ned", "ignore", "second"),
    ], "agents")
    callers = await phones_factory(server.sip_port, [caller("+15551230009")], "caller")
    from_caller = await dial_operator(callers, "+15551230009", server)

    offered = await agents.expect("incoming", account="max", timeout_s=30)
    await agents.answer(offered["call"])
    await agents.expect("answered", call=offered["call"])
    # max consults ned through the hotline, then hands the caller over (REFER with Replaces).
    consult = await agents.call("max", f"sip:ned@{LOOPBACK}:{server.sip_port}")
    ring = await agents.expect("incoming", account="ned", timeout_s=10)
    await agents.answer(ring["call"])
    await agents.expect("answered", call=consult)
    await agents.xfer_replaces(offered["call"], consult)

    done = await agents.expect("transfer_result", call=offered["call"], final=True, timeout_s=10)
    assert 200 <= done["code"] < 300, done
    await agents.expect("disconnected", call=offered["call"], timeout_s=10)
    await agents.expect("disconnected", call=consult, timeout_s=10)
    # ned's leg stays up, now with the caller on the other side.
    assert not agents.seen("disconnected", call=ring["call"])
    caller_hears = await hears(callers, from_caller)
    assert near(caller_hears["dominant_hz"], TONES_HZ["second"]), caller_hears
    ned_hears = await hears(agents, ring["call"])
    assert near(ned_hears["dominant_hz"], TONES_HZ["caller"]), ned_hears


async def test_caller_and_agent_hear_each_other(
    routing_server: HotlineProcess, phones_factory: Any
):
    server = routing_server
    agents = await phones_factory(server.sip_port, [agent("oli", "auto-answer", "first")],
                                  "agents")
    callers = await phones_factory(server.sip_port, [caller("+15551230010")], "caller")
    from_caller = await dial_operator(callers, "+15551230010", server)

    ring = await agents.expect("incoming", account="oli", timeout_s=30)
    await agents.expect("answered", call=ring["call"])
    await asyncio.sleep(0.5)
    caller_hears, agent_hears = await asyncio.gather(
        hears(callers, from_caller), hears(agents, ring["call"])
    )
    assert near(caller_hears["dominant_hz"], TONES_HZ["first"]), caller_hears
    assert caller_hears["rms"] > 300, caller_hears
    assert near(agent_hears["dominant_hz"], TONES_HZ["caller"]), agent_hears
    assert agent_hears["rms"] > 300, agent_hears
    # The agent hangs up: the caller's call ends too.
    await agents.hangup(ring["call"])
    gone = await callers.expect("disconnected", call=from_caller, timeout_s=5)
    assert gone["answered"] is True
