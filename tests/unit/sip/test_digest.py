"""Digest authentication: RFC 3261 §22, RFC 7616 and RFC 8760 (parsing, vectors, server, client)."""

import base64
import string

import pytest

from sip.digest import (
    AuthResult,
    AuthStatus,
    Challenge,
    Credentials,
    DigestClient,
    DigestServer,
    build_authorization,
    choose_challenge,
    compute_ha1,
    compute_response,
    parse_challenge,
    parse_credentials,
)
from sip.errors import LocalProtocolError, RemoteProtocolError

REALM = "hotline"
SECRET = b"0123456789abcdef0123456789abcdef"
URI = "sip:hotline.example.com"
PASSWORDS = {"bob": "s3cret"}

# RFC 7616 §3.9.1: the "Mufasa" example, challenge and answer, for SHA-256 and MD5.
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}

# RFC 2617 §3.5: the older example (note "Circle Of Life" with a capital O).
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa",\r\n realm="testrealm@host.com",\r\n'
    ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n uri="/dir/index.html",\r\n'
    " qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n"
    ' response="6629fae49393a05397450978507c4ef1",\r\n'
    ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def lookup(username: str) -> str | None:
    return PASSWORDS.get(username)


def verify_register(digest: DigestServer, credentials: Credentials, now: float) -> AuthResult:
    """What the registration service asks for a REGISTER to ``URI``."""
    return digest.verify(credentials, "REGISTER", lookup, now, request_uri=URI)


def server(**kwargs: float) -> DigestServer:
    return DigestServer(REALM, SECRET, **kwargs)  # type: ignore[arg-type]


def answer(
    challenge_value: str,
    password: str = "s3cret",
    nc: int = 1,
    uri: str = URI,
    method: str = "REGISTER",
    cnonce: str = "c0ffee",
) -> str:
    return build_authorization(
        parse_challenge(challenge_value), method, uri, "bob", password, cnonce, nc
    )


def _with_nonce(challenge_value: str, nonce: str) -> str:
    return challenge_value.replace(parse_challenge(challenge_value).nonce, nonce)


# ------------------------------------------------------------------ vectors


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_rfc7616_mufasa_example_computes_the_published_response(algorithm):
    challenge = parse_challenge(RFC7616_CHALLENGE.format(alg=algorithm))
    value = build_authorization(
        challenge, "GET", "/dir/index.html", "Mufasa", "Circle of Life", RFC7616_CNONCE
    )
    credentials = parse_credentials(value)
    assert credentials.response == RFC7616_RESPONSES[algorithm]
    assert credentials.qop == "auth"
    assert credentials.nc == "00000001"
    assert credentials.algorithm == algorithm
    assert credentials.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_rfc2617_example_parses_and_its_response_recomputes():
    credentials = parse_credentials(RFC2617_AUTHORIZATION)
    assert credentials.username == "Mufasa"
    assert credentials.algorithm == "MD5"  # the default when absent
    ha1 = compute_ha1("Mufasa", credentials.realm, "Circle Of Life")
    expected = compute_response(
        ha1, credentials.nonce, "GET", credentials.uri, "MD5",
        credentials.qop, credentials.nc, credentials.cnonce,
    )
    assert expected == credentials.response == "6629fae49393a05397450978507c4ef1"


def test_response_without_qop_uses_the_rfc2069_form():
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "CircleOfLife")
    # KD(H(A1), nonce ":" H(A2)), without nc, cnonce or qop.
    assert compute_response(ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET",
                            "/dir/index.html") == "1949323746fe6a43ef61f9606e7febea"


def test_auth_int_hashes_the_body_into_a2():
    ha1 = compute_ha1("bob", REALM, "pw", "SHA-256")
    args = (ha1, "n", "INVITE", URI, "SHA-256", "auth-int", "00000001", "c")
    assert compute_response(*args, body=b"v=0\r\n") != compute_response(*args, body=b"v=1\r\n")
    assert compute_response(*args[:5], "auth", "00000001", "c", body=b"v=0\r\n") == (
        compute_response(*args[:5], "auth", "00000001", "c", body=b"other")
    )


# ------------------------------------------------------------------ parsing


def test_credentials_parse_with_any_case_names_loose_whitespace_and_escapes():
    credentials = parse_credentials(
        'digest  USERNAME = "b\\"ob" ,Realm="hot\\\\line",nonce="n1", uri="sip:a@b",'
        ' response="ABCDEF0123456789abcdef0123456789", Algorithm=sha-256, QOP="auth",'
        " NC=0000000A, cnonce=\"x y\", ,"
    )
    assert credentials.username == 'b"ob'
    assert credentials.realm == "hot\\line"
    assert credentials.algorithm == "SHA-256"
    assert credentials.qop == "auth"
    assert credentials.nc == "0000000A"  # kept as sent: the hash covers this text
    assert credentials.nonce_count == 10
    assert credentials.cnonce == "x y"


def test_credentials_serialize_and_parse_back_unchanged():
    original = parse_credentials(answer(server().challenge(0.0)[0]))
    assert parse_credentials(str(original)) == original


def test_unknown_parameters_are_ignored():
    credentials = parse_credentials(
        'Digest username="a", realm="r", nonce="n", uri="sip:x", response="00ff", future=thing'
    )
    assert credentials.username == "a"


def test_challenge_parses_qop_options_stale_and_opaque():
    challenge = parse_challenge(
        'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth, Auth-Int",'
        ' nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5'
    )
    assert challenge == Challenge(
        realm="atlanta.com", nonce="f84f1cec41e6cbe5aea9c8e88d359", algorithm="MD5",
        qop=("auth", "auth-int"), opaque="", stale=False, domain="sip:ss1.carrier.com",
    )
    assert parse_challenge('Digest realm="r", nonce="n", stale=true').stale is True


def test_challenge_serializes_and_parses_back_unchanged():
    challenge = Challenge("r\"q", "n", "SHA-256", ("auth",), opaque="o", stale=True)
    assert parse_challenge(str(challenge)) == challenge


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty Authorization header"),
        ('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', "unsupported scheme 'Basic'"),
        ("Digest", "no parameters after Digest"),
        ('Digest realm="r", nonce="n", uri="u", response="00"', "missing 'username'"),
        ('Digest username="a", realm="r", uri="u", response="00"', "missing 'nonce'"),
        ('Digest username="a, realm="r", nonce="n"', "unterminated quoted string"),
        ('Digest username="a" x, realm="r"', "parameter 'username': expected a quoted"),
        ('Digest username, realm="r"', "parameter 'username' has no value"),
        ('Digest username=, realm="r"', "parameter 'username' has no value"),
        ('Digest user@name="a"', "bad parameter name 'user@name'"),
        ('Digest username=a b', "bad value for 'username'"),
        ('Digest username="a", username="b"', "duplicate parameter 'username'"),
        ('Digest username="a", realm="r", nonce="n", uri="u", response="xyz"',
         "response is not hexadecimal"),
        ('Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth',
         "qop=auth needs both nc and cnonce"),
        ('Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth,'
         ' nc=1, cnonce="c"', "nc must be 8 hex digits, got '1'"),
        ('Digest username="a", realm="r", nonce="n", uri="u", response="00", nc=00000001',
         "nc and cnonce need qop"),
    ],
)
def test_malformed_credentials_raise_a_precise_reason(value, reason):
    with pytest.raises(RemoteProtocolError) as caught:
        parse_credentials(value)
    assert reason in caught.value.reason
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('Digest nonce="n"', "missing 'realm'"),
        ('Digest realm="r", nonce="n", stale=maybe', "stale must be true or false"),
        ('Digest realm="r", nonce="n", qop=", "', "bad qop options"),
    ],
)
def test_malformed_challenges_raise_a_precise_reason(value, reason):
    with pytest.raises(RemoteProtocolError) as caught:
        parse_challenge(value, "Proxy-Authenticate")
    assert reason in caught.value.reason
    assert caught.value.reason.startswith("Proxy-Authenticate:")


# ------------------------------------------------------------------- server


def test_challenge_offers_sha256_first_then_md5_sharing_one_nonce():
    values = server().challenge(100.0)
    challenges = [parse_challenge(value) for value in values]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert all(c.realm == REALM and c.qop == ("auth",) and not c.stale for c in challenges)
    assert challenges[0].nonce == challenges[1].nonce


def test_each_challenge_has_a_new_nonce_and_stale_is_said_when_asked():
    digest = server()
    first, second = digest.challenge(1.0), digest.challenge(1.0, stale=True)
    assert parse_challenge(first[0]).nonce != parse_challenge(second[0]).nonce
    assert parse_challenge(second[0]).stale is True


def test_challenge_refuses_algorithms_we_cannot_verify():
    with pytest.raises(LocalProtocolError):
        server().challenge(0.0, algorithms=("SHA-512-256",))
    with pytest.raises(LocalProtocolError):
        server().challenge(0.0, algorithms=())


@pytest.mark.parametrize("index", [0, 1], ids=["SHA-256", "MD5"])
def test_client_answer_to_our_challenge_verifies(index):
    digest = server()
    value = answer(digest.challenge(10.0)[index])
    result = verify_register(digest, parse_credentials(value), 11.0)
    assert result.ok
    assert result.status is AuthStatus.OK
    assert result.username == "bob"


def test_precomputed_ha1_verifies_like_the_password():
    digest = server()
    stored = {(alg, "bob"): compute_ha1("bob", REALM, "s3cret", alg) for alg in ("MD5", "SHA-256")}
    credentials = parse_credentials(answer(digest.challenge(0.0)[0]))
    result = digest.verify(credentials, "REGISTER", None, 1.0, request_uri=URI,
                           ha1_lookup=lambda user, alg: stored.get((alg, user)))
    assert result.ok


def test_verify_needs_exactly_one_lookup():
    digest = server()
    credentials = parse_credentials(answer(digest.challenge(0.0)[0]))
    with pytest.raises(LocalProtocolError):
        digest.verify(credentials, "REGISTER", None, 1.0, request_uri=URI)
    with pytest.raises(LocalProtocolError):
        digest.verify(credentials, "REGISTER", lookup, 1.0, request_uri=URI,
                      ha1_lookup=lambda user, alg: None)


def test_wrong_password_fails():
    digest = server()
    credentials = parse_credentials(answer(digest.challenge(0.0)[0], password="guess"))
    result = verify_register(digest, credentials, 1.0)
    assert result.status is AuthStatus.FAILED
    assert result.reason == "wrong response (password?)"
    assert not result.ok and not result.stale  # a failure to count, not a retry


def test_unknown_user_fails():
    digest = server()
    credentials = parse_credentials(answer(digest.challenge(0.0)[0]))
    result = digest.verify(credentials, "REGISTER", lambda user: None, 1.0, request_uri=URI)
    assert result.status is AuthStatus.FAILED
    assert result.reason == "unknown user"


def test_response_for_another_method_fails():
    digest = server()
    credentials = parse_credentials(answer(digest.challenge(0.0)[0], method="INVITE"))
    assert verify_register(digest, credentials, 1.0).status is AuthStatus.FAILED


def test_expired_nonce_with_the_right_password_is_stale():
    digest = server(nonce_ttl_s=300.0)
    credentials = parse_credentials(answer(digest.challenge(1000.0)[0]))
    assert verify_register(digest, credentials, 1300.0).ok  # the last moment
    fresh = parse_credentials(answer(digest.challenge(1000.0)[0]))
    result = verify_register(digest, fresh, 1300.5)
    assert result.status is AuthStatus.STALE
    assert result.stale
    assert result.reason == "nonce expired"


def test_expired_nonce_with_a_wrong_password_fails_rather_than_stale():
    digest = server(nonce_ttl_s=300.0)
    credentials = parse_credentials(answer(digest.challenge(0.0)[0], password="guess"))
    assert verify_register(digest, credentials, 999.0).status is AuthStatus.FAILED


def test_replayed_nonce_count_is_rejected_and_a_higher_one_accepted():
    digest = server()
    challenge = digest.challenge(0.0)[0]
    first = parse_credentials(answer(challenge, nc=1))
    assert verify_register(digest, first, 1.0).ok
    replay = verify_register(digest, first, 2.0)
    assert replay.status is AuthStatus.REPLAY
    assert replay.reason == "nc 1 not above 1"
    assert replay.stale  # answered with a fresh challenge, stale=true
    assert verify_register(digest, parse_credentials(answer(challenge, nc=3)), 3.0).ok
    late = verify_register(digest, parse_credentials(answer(challenge, nc=2)), 4.0)
    assert late.status is AuthStatus.REPLAY


def test_a_failed_attempt_does_not_consume_the_nonce_count():
    digest = server()
    challenge = digest.challenge(0.0)[0]
    wrong = parse_credentials(answer(challenge, password="guess", nc=1))
    assert verify_register(digest, wrong, 1.0).status is AuthStatus.FAILED
    assert verify_register(digest, parse_credentials(answer(challenge, nc=1)), 2.0).ok


def test_md5_without_qop_is_accepted_once_per_nonce():
    digest = server()
    nonce = parse_challenge(digest.challenge(0.0)[1]).nonce
    legacy = Challenge(REALM, nonce, "MD5")  # as if the challenge had offered no qop
    credentials = parse_credentials(
        build_authorization(legacy, "REGISTER", URI, "bob", "s3cret", "unused")
    )
    assert credentials.qop is None and credentials.cnonce is None and credentials.nc is None
    assert verify_register(digest, credentials, 1.0).ok
    again = verify_register(digest, credentials, 2.0)
    assert again.status is AuthStatus.REPLAY
    with_qop = parse_credentials(answer(_with_nonce(digest.challenge(0.0)[1], nonce), nc=5))
    assert verify_register(digest, with_qop, 3.0).status is AuthStatus.REPLAY


def test_sha256_without_qop_fails():
    digest = server()
    nonce = parse_challenge(digest.challenge(0.0)[0]).nonce
    credentials = parse_credentials(build_authorization(
        Challenge(REALM, nonce, "SHA-256"), "REGISTER", URI, "bob", "s3cret", "unused"))
    result = verify_register(digest, credentials, 1.0)
    assert result.status is AuthStatus.FAILED
    assert result.reason == "SHA-256 needs qop"


def test_forged_nonce_never_verifies():
    digest = server()
    genuine = parse_challenge(digest.challenge(1000.0)[0]).nonce
    raw = bytearray(base64.urlsafe_b64decode(genuine + "="))
    raw[7] ^= 0x01  # move the timestamp: the tag no longer matches
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    # The last character carries two stray bits: set one, and the bytes stay the same.
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    respelled = genuine[:-1] + alphabet[alphabet.index(genuine[-1]) + 1]
    assert base64.urlsafe_b64decode(respelled + "=") == base64.urlsafe_b64decode(genuine + "=")
    for nonce in (forged, respelled, "made-up", "A" * 43, "é" * 43):
        value = _with_nonce(digest.challenge(1000.0)[0], nonce)
        right = verify_register(digest, parse_credentials(answer(value)), 1001.0)
        assert right.status is AuthStatus.STALE  # knows the password: fetch a real nonce
        assert right.reason == "nonce was not issued by us"
        wrong = parse_credentials(answer(value, password="guess"))
        assert verify_register(digest, wrong, 1001.0).status is AuthStatus.FAILED


def test_nonce_from_another_secret_is_not_ours():
    other = DigestServer(REALM, b"another secret of sixteen+ bytes")
    value = answer(other.challenge(0.0)[0])
    result = verify_register(server(), parse_credentials(value), 1.0)
    assert result.status is AuthStatus.STALE
    assert result.reason == "nonce was not issued by us"


def test_realm_mismatch_fails():
    digest = server()
    value = digest.challenge(0.0)[0].replace(f'realm="{REALM}"', 'realm="elsewhere"')
    result = verify_register(digest, parse_credentials(answer(value)), 1.0)
    assert result.status is AuthStatus.FAILED
    assert result.reason == "realm mismatch"


def test_uri_mismatch_fails():
    digest = server()
    value = answer(digest.challenge(0.0)[0], uri="sip:other.example.com")
    result = verify_register(digest, parse_credentials(value), 1.0)
    assert result.status is AuthStatus.FAILED
    assert result.reason == "uri does not match the Request-URI"


def test_unsupported_algorithm_and_qop_fail():
    digest = server()
    base = parse_credentials(answer(digest.challenge(0.0)[0]))
    for text, reason in [
        (str(base).replace("algorithm=SHA-256", "algorithm=SHA-512-256"),
         "unsupported algorithm 'SHA-512-256'"),
        (str(base).replace("qop=auth", "qop=auth-conf"), "unsupported qop 'auth-conf'"),
        (str(base).replace(base.response, base.response[:32]), "response has the wrong length"),
    ]:
        result = verify_register(digest, parse_credentials(text), 1.0)
        assert (result.status, result.reason) == (AuthStatus.FAILED, reason)


def test_replay_table_forgets_nonces_once_they_are_stale():
    digest = server(nonce_ttl_s=10.0)
    for second in range(5):
        value = answer(digest.challenge(float(second))[0])
        assert verify_register(digest, parse_credentials(value), second + 0.5).ok
    assert digest.tracked_nonces() == 5
    value = answer(digest.challenge(20.0)[0])
    assert verify_register(digest, parse_credentials(value), 20.0).ok
    assert digest.tracked_nonces() == 1


def test_full_replay_table_drops_the_oldest_and_never_reopens_its_replay():
    digest = server(max_tracked_nonces=2)
    earlier = answer(digest.challenge(-1.0)[0])  # issued before the dropped one, unused
    later = answer(digest.challenge(0.5)[0])  # issued after the dropped one, unused
    values = [answer(digest.challenge(float(t))[0]) for t in range(3)]
    for t, value in enumerate(values):
        assert verify_register(digest, parse_credentials(value), 3.0 + t).ok
    assert digest.tracked_nonces() == 2
    # The first nonce's entry was dropped: replaying it must not succeed.
    replay = verify_register(digest, parse_credentials(values[0]), 10.0)
    assert replay.status is AuthStatus.STALE
    assert replay.reason == "nonce no longer tracked"
    # Untracked and issued no later than a dropped entry: a first use cannot be told
    # from a replay, so the client fetches a new nonce.
    old = verify_register(digest, parse_credentials(earlier), 10.0)
    assert old.status is AuthStatus.STALE
    # Issued after every dropped entry: a first use for sure.
    assert verify_register(digest, parse_credentials(later), 11.0).ok


def test_server_rejects_a_short_secret():
    with pytest.raises(LocalProtocolError):
        DigestServer(REALM, b"short")


# ------------------------------------------------------------------- client


def test_client_picks_the_strongest_algorithm_whatever_the_order():
    md5_first = [
        'Basic realm="x"',
        'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"',
        'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"',
    ]
    assert choose_challenge(md5_first).algorithm == "SHA-256"
    assert choose_challenge(md5_first[:2]).algorithm == "MD5"


def test_client_refuses_challenges_it_cannot_answer():
    with pytest.raises(RemoteProtocolError) as caught:
        choose_challenge(['Digest realm="r", nonce="n", algorithm=SHA-512-256-sess'])
    assert caught.value.reason == (
        "no usable challenge: unsupported digest algorithm 'SHA-512-256-SESS'"
    )
    with pytest.raises(RemoteProtocolError):
        choose_challenge([])
    with pytest.raises(RemoteProtocolError) as caught:
        build_authorization(parse_challenge('Digest realm="r", nonce="n", qop="auth-conf"'),
                            "REGISTER", URI, "bob", "pw", "c")
    assert caught.value.reason == "no supported qop in 'auth-conf'"


def test_client_counts_nc_per_nonce_and_the_server_accepts_each_refresh():
    digest = server()
    client = DigestClient("bob", "s3cret")
    challenge = digest.challenge(0.0)
    for expected_nc in (1, 2, 3):
        credentials = parse_credentials(client.authorize(challenge, "REGISTER", URI))
        assert credentials.nonce_count == expected_nc
        assert verify_register(digest, credentials, float(expected_nc)).ok
    fresh = parse_credentials(client.authorize(digest.challenge(5.0), "REGISTER", URI))
    assert fresh.nonce_count == 1


def test_client_draws_a_new_cnonce_for_each_request():
    client = DigestClient("bob", "s3cret")
    challenge = server().challenge(0.0)
    first = parse_credentials(client.authorize(challenge, "REGISTER", URI))
    second = parse_credentials(client.authorize(challenge, "REGISTER", URI))
    assert first.cnonce != second.cnonce
    assert len(first.cnonce or "") == 32


def test_client_auth_int_covers_the_body_and_the_server_checks_it():
    digest = server()
    nonce = parse_challenge(digest.challenge(0.0)[0]).nonce
    challenge = Challenge(REALM, nonce, "SHA-256", ("auth-int",))
    value = build_authorization(challenge, "INVITE", URI, "bob", "s3cret", "c", body=b"v=0\r\n")
    credentials = parse_credentials(value)
    assert credentials.qop == "auth-int"
    tampered = digest.verify(credentials, "INVITE", lookup, 1.0, b"v=1\r\n", request_uri=URI)
    assert tampered.status is AuthStatus.FAILED
    assert digest.verify(credentials, "INVITE", lookup, 1.0, b"v=0\r\n", request_uri=URI).ok
