"""The anomaly signals as pure functions."""

from __future__ import annotations

from service.anomaly import signals
from service.anomaly.signals import Seen

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko)"
                  " Chrome/126.0 Mobile Safari/537.36")
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/126.0 Safari/537.36 Edg/126.0")


def test_networks_are_the_24_or_the_48() -> None:
    """IPv4 maps to its /24, IPv6 to its /48, a mapped IPv4 to its /24, junk to unknown."""
    assert signals.network_of("198.51.100.77") == "198.51.100.0/24"
    assert signals.network_of("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert signals.network_of("::ffff:198.51.100.77") == "198.51.100.0/24"
    assert signals.network_of("unknown") == "unknown"


def test_device_family_ignores_versions() -> None:
    """Browser and platform are kept, versions dropped; other clients by product name."""
    assert signals.device_family(FIREFOX) == "firefox/linux"
    assert signals.device_family(FIREFOX.replace("128.0", "129.0")) == "firefox/linux"
    assert signals.device_family(CHROME_ANDROID) == "chrome/android"
    assert signals.device_family(EDGE) == "edge/windows"
    assert signals.device_family("python-httpx/0.28.1") == "python-httpx"
    assert signals.device_family("") == "unknown"


def test_a_first_login_is_never_anomalous() -> None:
    """Without history there is nothing to compare with, and nothing is familiar."""
    assessment = signals.assess_login([], "198.51.100.7", FIREFOX, 1000.0)
    assert not assessment.anomalous and not assessment.familiar


def test_same_network_and_device_is_familiar() -> None:
    """Another address in a known /24 with a known device family raises nothing."""
    history = [Seen(0.0, "198.51.100.0/24", "firefox/linux")]
    assessment = signals.assess_login(history, "198.51.100.200", FIREFOX, 5000.0)
    assert assessment.familiar


def test_new_network_and_new_device_are_both_reasons() -> None:
    """A login from a new /24 with a new device family carries both reasons."""
    history = [Seen(0.0, "198.51.100.0/24", "firefox/linux")]
    assessment = signals.assess_login(history, "203.0.113.1", CHROME_ANDROID, 5000.0)
    assert assessment.reasons == ("new_network", "new_device")


def test_three_networks_within_ten_minutes_is_an_impossible_rate() -> None:
    """A third distinct network within the window adds rapid_network_change."""
    history = [Seen(100.0, "198.51.100.0/24", "curl"), Seen(200.0, "192.0.2.0/24", "curl")]
    assessment = signals.assess_login(history, "203.0.113.1", "curl/8", 300.0)
    assert signals.RAPID_CHANGE in assessment.reasons
    later = signals.assess_login(history, "203.0.113.1", "curl/8", 200.0 + 601.0 + 100.0)
    assert signals.RAPID_CHANGE not in later.reasons


def test_allowed_cidrs_parse_and_match() -> None:
    """CIDRs parse from text or lists; membership handles both families; junk is refused."""
    networks = signals.parse_cidrs("10.0.0.0/8, 2001:db8::/32")
    assert signals.inside("10.1.2.3", networks) and signals.inside("2001:db8::5", networks)
    assert not signals.inside("192.0.2.1", networks) and not signals.inside("bogus", networks)
    try:
        signals.parse_cidrs(["10.0.0.0/8", "not-a-cidr"])
    except ValueError as exc:
        assert "not-a-cidr" in str(exc)
    else:
        raise AssertionError("a bad CIDR was accepted")
