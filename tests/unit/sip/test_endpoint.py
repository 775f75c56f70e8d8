"""The asyncio shell: real loopback sockets, UDP and TCP, parse errors answered."""

import asyncio

import pytest
from ua_harness import Limits

from sip.endpoint import SipEndpoint
from sip.parser import StreamFramer, parse_message
from sip.registration_service import RegistrationService
from sip.transaction_layer import TransactionLayer
from sip.user_agent import UaConfig, UserAgent


def options(branch: str, transport: str = "UDP") -> bytes:
    return (
        f"OPTIONS sip:hotline@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@example.com>;tag=p\r\n"
        "To: <sip:hotline@127.0.0.1>\r\nCall-ID: probe-" + branch + "\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
async def endpoint():
    registration = RegistrationService("hotline", {}, b"s" * 32, "127.0.0.1", Limits())
    ua = UserAgent(UaConfig("127.0.0.1", 0), TransactionLayer(), registration)
    events: list[object] = []
    ep = SipEndpoint(ua, events.append)
    await ep.start("127.0.0.1", 0)
    yield ep
    ep.close()


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.put_nowait(data)


async def udp_exchange(port: int, data: bytes) -> Client:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    transport.sendto(data)
    return client


async def test_options_over_udp_is_answered_to_the_source_port(endpoint):
    client = await udp_exchange(endpoint.udp.local_port, options("u1"))
    response = parse_message(await asyncio.wait_for(client.received.get(), 2))
    assert response.status_code == 200
    # RFC 3581: the Via tells the caller where we saw it.
    assert response.via.params["received"] == "127.0.0.1"
    assert response.via.params["rport"] not in (None, "")


async def test_options_over_tcp_is_answered_on_the_same_connection(endpoint):
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.tcp.local_port)
    # Two messages in one write, split by the framer on Content-Length (§18.3).
    writer.write(options("t1", "TCP") + options("t2", "TCP"))
    framer = StreamFramer()
    frames: list[bytes] = []
    while len(frames) < 2:
        framer.feed(await asyncio.wait_for(reader.read(4096), 2))
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    branches = sorted(parse_message(f).via.branch for f in frames)
    assert branches == ["z9hG4bKt1", "z9hG4bKt2"]
    writer.close()


async def test_malformed_request_gets_400_naming_the_problem(endpoint):
    bad = options("b1").replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
    client = await udp_exchange(endpoint.udp.local_port, bad)
    raw = await asyncio.wait_for(client.received.get(), 2)
    # The response copies the bad CSeq verbatim (§8.2.6.2), so read its status line.
    status_line = raw.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith("SIP/2.0 400 ")
    assert "CSeq" in status_line


async def test_garbage_is_dropped_and_the_endpoint_keeps_serving(endpoint):
    client = await udp_exchange(endpoint.udp.local_port, b"\x00\xffnot sip at all\r\n\r\n")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.received.get(), 0.2)
    assert endpoint.stats["dropped"] == 1
    client2 = await udp_exchange(endpoint.udp.local_port, options("g2"))
    assert parse_message(await asyncio.wait_for(client2.received.get(), 2)).status_code == 200


async def test_an_ephemeral_port_taken_for_tcp_is_picked_again(monkeypatch):
    """Port 0: UDP picks a port and TCP reuses it; if TCP finds it taken, pick anew."""
    import errno

    from sip import endpoint as endpoint_module

    real_listen = endpoint_module.TcpTransport.listen
    refused: list[int] = []

    async def listen_refusing_once(host, port, on_message):
        if not refused:
            refused.append(port)
            raise OSError(errno.EADDRINUSE, "address already in use")
        return await real_listen(host, port, on_message)

    monkeypatch.setattr(endpoint_module.TcpTransport, "listen", listen_refusing_once)
    registration = RegistrationService("hotline", {}, b"s" * 32, "127.0.0.1", Limits())
    ua = UserAgent(UaConfig("127.0.0.1", 0), TransactionLayer(), registration)
    ep = SipEndpoint(ua, lambda event: None)
    await ep.start("127.0.0.1", 0)
    try:
        assert len(refused) == 1
        assert ep.udp is not None and ep.tcp is not None
        assert ep.tcp.local_port == ep.udp.local_port != 0
    finally:
        ep.close()


async def test_a_fixed_port_taken_for_tcp_is_an_error(monkeypatch):
    import errno

    from sip import endpoint as endpoint_module

    tried: list[int] = []

    async def listen_refusing(host, port, on_message):
        tried.append(port)
        raise OSError(errno.EADDRINUSE, "address already in use")

    monkeypatch.setattr(endpoint_module.TcpTransport, "listen", listen_refusing)
    registration = RegistrationService("hotline", {}, b"s" * 32, "127.0.0.1", Limits())
    ua = UserAgent(UaConfig("127.0.0.1", 0), TransactionLayer(), registration)
    ep = SipEndpoint(ua, lambda event: None)
    try:
        with pytest.raises(OSError):
            await ep.start("127.0.0.1", 45999)
        assert tried == [45999]  # the operator asked for that port: no other is tried
    finally:
        ep.close()
