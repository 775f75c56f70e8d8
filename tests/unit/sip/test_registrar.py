"""The registrar's binding store, RFC 3261 §10.3 steps 5-8, on a fake clock."""

import pytest

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.peer import Peer
from sip.registrar import (
    Binding,
    ContactUpdate,
    IntervalTooBrief,
    Registrar,
    canonical_aor,
    parse_delta_seconds,
)

AOR = "sip:bob@hotline.example.com"
DESK = "sip:bob@192.0.2.20:5060"
SOFT = "sip:bob@10.0.0.7:5062;transport=tcp"
NAT = Peer("udp", "203.0.113.9", 40123)


def register(
    registrar: Registrar,
    *contacts: ContactUpdate,
    call_id: str = "call-1",
    cseq: int = 1,
    now: float = 0.0,
    expires: int | None = None,
    source: tuple[str, str, int] = NAT,
) -> list[Binding]:
    return registrar.update(AOR, list(contacts), call_id, cseq, now, source, expires)


# ------------------------------------------------------------ Contact values


def test_contact_value_gives_uri_expires_q_and_outbound_params():
    update = ContactUpdate.parse(
        '"Bob" <sip:bob@10.0.0.7:5062;transport=tcp;ob>;expires=120;q=0.7;'
        '+sip.instance="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";reg-id=1'
    )
    assert update == ContactUpdate(
        "sip:bob@10.0.0.7:5062;transport=tcp;ob", 120, 0.7,
        "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>", 1,
    )


def test_contact_value_defaults_and_wildcard():
    assert ContactUpdate.parse("<sip:bob@host>") == ContactUpdate("sip:bob@host", None, 1.0)
    assert ContactUpdate.parse(" * ") == ContactUpdate.wildcard()
    assert ContactUpdate.wildcard().is_wildcard
    assert not ContactUpdate("sip:bob@host").is_wildcard


def test_expires_header_value_is_delta_seconds():
    assert parse_delta_seconds(" 3600 ") == 3600
    assert parse_delta_seconds("4294967296") == 2**32 - 1
    with pytest.raises(RemoteProtocolError) as caught:
        parse_delta_seconds("1h")
    assert caught.value.reason == "bad Expires header '1h'"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("<sip:bob@host>;expires=soon", "bad expires parameter 'soon'"),
        ("<sip:bob@host>;expires=-1", "bad expires parameter '-1'"),
        ("<sip:bob@host>;q=1.5", "bad q parameter '1.5'"),
        ("<sip:bob@host>;q=0.1234", "bad q parameter '0.1234'"),
        ("<sip:bob@host>;reg-id=0", "bad reg-id '0'"),
        ("<sip:bob@host", "unterminated '<'"),
    ],
)
def test_bad_contact_values_are_400(value, reason):
    with pytest.raises(RemoteProtocolError) as caught:
        ContactUpdate.parse(value)
    assert reason in caught.value.reason
    assert caught.value.status_code == 400


def test_huge_expires_is_capped_like_delta_seconds():
    assert ContactUpdate.parse("<sip:b@h>;expires=99999999999").expires_s == 2**32 - 1


def test_canonical_aor_drops_parameters_and_unescapes():
    assert canonical_aor("SIP:b%6Fb@HotLine.Example.com;user=phone") == AOR
    assert canonical_aor("sips:bob@example.com:5061") == "sips:bob@example.com:5061"
    with pytest.raises(RemoteProtocolError) as caught:
        canonical_aor("sip:example.com")
    assert caught.value.status_code == 404


# ------------------------------------------------------------------ expiry


def test_contact_expires_param_wins_over_the_expires_header():
    [binding] = register(Registrar(), ContactUpdate(DESK, expires_s=600), expires=1800, now=10.0)
    assert binding.expires_at == 610.0


def test_expires_header_applies_when_the_contact_has_no_param():
    [binding] = register(Registrar(), ContactUpdate(DESK), expires=1800, now=10.0)
    assert binding.expires_at == 1810.0


def test_default_applies_when_neither_says():
    [binding] = register(Registrar(default_expires_s=900), ContactUpdate(DESK), now=10.0)
    assert binding.expires_at == 910.0


def test_too_long_expiry_is_shortened_to_the_maximum():
    [binding] = register(Registrar(max_expires_s=3600), ContactUpdate(DESK, expires_s=86400))
    assert binding.expires_at == 3600.0
    assert binding.expires_in_s(100.0) == 3500
    assert binding.contact_value(100.0) == f"<{DESK}>;expires=3500"


def test_too_brief_expiry_is_423_with_min_expires_and_changes_nothing():
    registrar = Registrar(min_expires_s=60)
    register(registrar, ContactUpdate(DESK))
    with pytest.raises(IntervalTooBrief) as caught:
        register(registrar, ContactUpdate(DESK), ContactUpdate(SOFT, expires_s=30), cseq=2)
    assert caught.value.status_code == 423
    assert caught.value.min_expires_s == 60
    [binding] = registrar.lookup(AOR, 1.0)
    assert binding.cseq == 1


def test_423_applies_only_below_one_hour():
    # §10.3 step 7: "greater than zero AND smaller than one hour AND less than" the minimum.
    registrar = Registrar(min_expires_s=7200, default_expires_s=7200, max_expires_s=7200)
    [binding] = register(registrar, ContactUpdate(DESK, expires_s=3600))
    assert binding.expires_at == 3600.0
    with pytest.raises(IntervalTooBrief):
        register(registrar, ContactUpdate(SOFT, expires_s=3599), cseq=2)


def test_negative_expires_header_is_400():
    with pytest.raises(RemoteProtocolError) as caught:
        register(Registrar(), ContactUpdate(DESK), expires=-5)
    assert caught.value.status_code == 400


def test_expires_zero_removes_the_binding():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), ContactUpdate(SOFT))
    remaining = register(registrar, ContactUpdate(DESK, expires_s=0), cseq=2)
    assert [b.contact_uri for b in remaining] == [SOFT]
    assert registrar.bindings_count() == 1


def test_removing_an_unknown_contact_is_harmless():
    assert register(Registrar(), ContactUpdate(DESK, expires_s=0)) == []


# ------------------------------------------------------------------ wildcard


def test_wildcard_with_expires_zero_removes_every_binding():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), ContactUpdate(SOFT), call_id="a")
    assert register(registrar, ContactUpdate("*"), call_id="b", expires=0) == []
    assert registrar.lookup(AOR, 1.0) == []
    assert registrar.bindings_count() == 0


@pytest.mark.parametrize(
    ("contacts", "expires", "reason"),
    [
        ([ContactUpdate("*"), ContactUpdate(DESK)], 0, "must be the only Contact"),
        ([ContactUpdate("*")], 3600, "needs 'Expires: 0'"),
        ([ContactUpdate("*")], None, "needs 'Expires: 0'"),
        ([ContactUpdate("*", expires_s=0)], 0, "takes no expires parameter"),
    ],
)
def test_wildcard_misuse_is_400_and_changes_nothing(contacts, expires, reason):
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK))
    with pytest.raises(RemoteProtocolError) as caught:
        register(registrar, *contacts, call_id="b", expires=expires)
    assert reason in caught.value.reason
    assert caught.value.status_code == 400
    assert len(registrar.lookup(AOR, 1.0)) == 1


def test_wildcard_with_same_call_id_needs_a_higher_cseq():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), call_id="a", cseq=5)
    with pytest.raises(RemoteProtocolError) as caught:
        register(registrar, ContactUpdate("*"), call_id="a", cseq=5, expires=0)
    assert caught.value.reason == "out-of-order REGISTER: CSeq 5 is not above 5"
    assert len(registrar.lookup(AOR, 1.0)) == 1
    assert register(registrar, ContactUpdate("*"), call_id="a", cseq=6, expires=0) == []


# ------------------------------------------------------- Call-ID and CSeq


def test_refresh_with_same_call_id_and_higher_cseq_updates_the_binding():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), cseq=1, now=0.0)
    moved = Peer("udp", "203.0.113.9", 40999)  # the NAT picked a new port
    [binding] = register(registrar, ContactUpdate(DESK, expires_s=600), cseq=2, now=100.0,
                         source=moved)
    assert (binding.cseq, binding.expires_at, binding.source) == (2, 700.0, moved)
    assert registrar.bindings_count() == 1


@pytest.mark.parametrize("cseq", [3, 2])
def test_same_call_id_with_lower_or_equal_cseq_fails_and_changes_nothing(cseq):
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), cseq=3)
    with pytest.raises(RemoteProtocolError) as caught:
        register(registrar, ContactUpdate(SOFT), ContactUpdate(DESK, expires_s=0), cseq=cseq)
    assert caught.value.status_code == 400
    assert caught.value.reason == f"out-of-order REGISTER: CSeq {cseq} is not above 3"
    assert [b.contact_uri for b in registrar.lookup(AOR, 1.0)] == [DESK]


def test_different_call_id_replaces_the_binding_whatever_its_cseq():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), call_id="before-reboot", cseq=90)
    [binding] = register(registrar, ContactUpdate(DESK), call_id="after-reboot", cseq=1)
    assert (binding.call_id, binding.cseq) == ("after-reboot", 1)


def test_different_call_id_with_expires_zero_removes_the_binding():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), call_id="a", cseq=90)
    assert register(registrar, ContactUpdate(DESK, expires_s=0), call_id="b", cseq=1) == []


def test_contacts_match_by_uri_comparison_not_by_text():
    registrar = Registrar()
    register(registrar, ContactUpdate("sip:bob@PHONE.example.com;transport=udp"))
    [binding] = register(registrar, ContactUpdate("sip:bob@phone.example.com"), cseq=2)
    assert binding.contact_uri == "sip:bob@phone.example.com"
    # The user part is case-sensitive, and a port is not the same as no port.
    assert len(register(registrar, ContactUpdate("sip:BOB@phone.example.com"), cseq=3)) == 2
    assert len(register(registrar, ContactUpdate("sip:bob@phone.example.com:5060"), cseq=4)) == 3


def test_outbound_instance_and_reg_id_identify_the_binding():
    registrar = Registrar()
    instance = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
    register(registrar, ContactUpdate(DESK, instance_id=instance, reg_id=1))
    [binding] = register(registrar, ContactUpdate(SOFT, instance_id=instance, reg_id=1), cseq=2)
    assert binding.contact_uri == SOFT
    assert binding.contact_value(0.0) == (
        f'<{SOFT}>;expires=3600;+sip.instance="{instance}";reg-id=1'
    )


def test_a_contact_listed_twice_takes_the_last_one():
    [binding] = register(Registrar(), ContactUpdate(DESK, expires_s=600),
                         ContactUpdate(DESK, expires_s=900))
    assert binding.expires_at == 900.0


def test_bad_contact_uri_is_400():
    with pytest.raises(RemoteProtocolError) as caught:
        register(Registrar(), ContactUpdate("sip:bob@bad host"))
    assert caught.value.status_code == 400
    with pytest.raises(RemoteProtocolError):
        register(Registrar(), ContactUpdate("tel:+15551234"))


# ---------------------------------------------------------- several contacts


def test_desk_phone_and_softphone_both_register_and_lookup_orders_by_q():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK, q=0.5), call_id="desk", now=0.0)
    bindings = register(registrar, ContactUpdate(SOFT, q=0.9), call_id="soft", now=5.0)
    assert [b.contact_uri for b in bindings] == [SOFT, DESK]
    assert [b.contact_uri for b in registrar.lookup(AOR, 6.0)] == [SOFT, DESK]


def test_equal_q_puts_the_most_recently_registered_first():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK), call_id="desk", now=0.0)
    register(registrar, ContactUpdate(SOFT), call_id="soft", now=5.0)
    assert [b.contact_uri for b in registrar.lookup(AOR, 6.0)] == [SOFT, DESK]
    register(registrar, ContactUpdate(DESK), call_id="desk", cseq=2, now=7.0)
    assert [b.contact_uri for b in registrar.lookup(AOR, 8.0)] == [DESK, SOFT]


def test_query_without_contacts_returns_the_bindings_unchanged():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK))
    [binding] = register(registrar, call_id="other", cseq=1, now=10.0)
    assert (binding.call_id, binding.expires_at) == ("call-1", 3600.0)


def test_over_the_contact_limit_evicts_the_soonest_expiring_other_binding():
    registrar = Registrar(max_contacts_per_aor=2)
    register(registrar, ContactUpdate("sip:bob@10.0.0.1", expires_s=600), call_id="a")
    register(registrar, ContactUpdate("sip:bob@10.0.0.2", expires_s=1200), call_id="b")
    bindings = register(registrar, ContactUpdate("sip:bob@10.0.0.3"), call_id="c")
    assert sorted(b.contact_uri for b in bindings) == ["sip:bob@10.0.0.2", "sip:bob@10.0.0.3"]


def test_a_request_alone_over_the_contact_limit_is_403():
    registrar = Registrar(max_contacts_per_aor=2)
    with pytest.raises(RemoteProtocolError) as caught:
        register(registrar, *(ContactUpdate(f"sip:bob@10.0.0.{n}") for n in range(3)))
    assert caught.value.status_code == 403
    assert registrar.bindings_count() == 0


# -------------------------------------------------------- lookup and expire


def test_lookup_drops_expired_bindings():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK, expires_s=60), ContactUpdate(SOFT, expires_s=120))
    assert [b.contact_uri for b in registrar.lookup(AOR, 60.0)] == [SOFT]
    assert registrar.lookup(AOR, 120.0) == []
    assert registrar.bindings_count() == 0
    assert registrar.lookup("sip:nobody@hotline.example.com", 0.0) == []


def test_an_expired_binding_does_not_block_a_new_registration_with_its_call_id():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK, expires_s=60), cseq=9)
    [binding] = register(registrar, ContactUpdate(DESK), cseq=1, now=61.0)
    assert binding.cseq == 1


def test_expire_purges_lapsed_bindings_and_reports_them():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK, expires_s=60), ContactUpdate(SOFT, expires_s=300))
    assert registrar.next_deadline() == 60.0
    assert registrar.expire(59.0) == []
    [gone] = registrar.expire(60.0)
    assert gone.contact_uri == DESK
    assert registrar.bindings_count() == 1
    assert registrar.next_deadline() == 300.0
    assert [b.contact_uri for b in registrar.expire(1000.0)] == [SOFT]
    assert registrar.next_deadline() is None


def test_refresh_moves_the_deadline_and_the_old_one_is_skipped():
    registrar = Registrar()
    register(registrar, ContactUpdate(DESK, expires_s=60), cseq=1, now=0.0)
    register(registrar, ContactUpdate(DESK, expires_s=60), cseq=2, now=50.0)
    assert registrar.next_deadline() == 110.0
    assert registrar.expire(100.0) == []
    assert registrar.bindings_count() == 1


def test_deadline_bookkeeping_stays_bounded_under_many_refreshes():
    registrar = Registrar()
    for cseq in range(1, 2001):
        register(registrar, ContactUpdate(DESK), cseq=cseq, now=float(cseq))
    assert len(registrar._deadlines) < 200
    assert registrar.next_deadline() == 2000.0 + 3600.0


def test_configuration_must_be_consistent():
    with pytest.raises(LocalProtocolError):
        Registrar(min_expires_s=600, default_expires_s=300)
    with pytest.raises(LocalProtocolError):
        Registrar(max_contacts_per_aor=0)
