"""What makes a login or an API-key use unusual, computed from bounded history.

Networks, not addresses, are compared: the /24 of an IPv4 address and the /48 of an
IPv6 address (a typical site allocation), so that a DHCP renewal or a privacy address
is not news. A device is the user agent's *family* (browser or client, and platform),
never the full string, which changes with every update. "Impossible rate of change"
needs no geolocation database: three or more distinct networks for one user within
ten minutes is not a person moving, it is several parties holding one credential.

Reasons are a fixed vocabulary, so they are safe as metric labels; no raw address
ever is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

NEW_NETWORK = "new_network"
NEW_DEVICE = "new_device"
RAPID_CHANGE = "rapid_network_change"
OUTSIDE_ALLOWED = "outside_allowed_cidrs"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RAPID_WINDOW = 600.0
RAPID_NETWORKS = 3
UNKNOWN = "unknown"

_BROWSERS = (  # order matters: Edge and Opera also say "Chrome", Chrome also "Safari"
    ("Edg/", "edge"), ("OPR/", "opera"), ("Firefox/", "firefox"), ("Chrome/", "chrome"),
    ("CriOS/", "chrome"), ("Safari/", "safari"),
)
_PLATFORMS = (
    ("Android", "android"), ("iPhone", "ios"), ("iPad", "ios"), ("Windows", "windows"),
    ("Mac OS X", "macos"), ("Macintosh", "macos"), ("CrOS", "chromeos"), ("Linux", "linux"),
)
_PRODUCT = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,31})")


@lru_cache(maxsize=8192)
def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) holding ``ip``; ``unknown`` for anything else."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def device_family(user_agent: str) -> str:
    """``firefox/linux``, ``chrome/android``, ``python-httpx``, … or ``unknown``."""
    agent = user_agent.strip()
    if not agent:
        return UNKNOWN
    if agent.startswith("Mozilla/"):
        browser = next((name for token, name in _BROWSERS if token in agent), "browser")
        platform = next((name for token, name in _PLATFORMS if token in agent), "other")
        return f"{browser}/{platform}"
    match = _PRODUCT.match(agent)
    return match.group(1).lower() if match else UNKNOWN


@dataclass(frozen=True, slots=True)
class Seen:
    """One earlier login, as far as the signals care."""

    at: float
    network: str
    device: str


@dataclass(frozen=True, slots=True)
class Assessment:
    network: str
    device: str
    reasons: tuple[str, ...]
    has_history: bool

    @property
    def anomalous(self) -> bool:
        return bool(self.reasons)

    @property
    def familiar(self) -> bool:
        """Known network and device from earlier logins: what ``step_up`` lets pass."""
        return self.has_history and not self.reasons


def assess_login(history: Sequence[Seen], ip: str, user_agent: str, now: float) -> Assessment:
    """Compare one login with the user's recent ones. A first login sets the baseline
    and is never anomalous."""
    network, device = network_of(ip), device_family(user_agent)
    if not history:
        return Assessment(network, device, (), False)
    reasons: list[str] = []
    if network not in {seen.network for seen in history}:
        reasons.append(NEW_NETWORK)
    if device not in {seen.device for seen in history}:
        reasons.append(NEW_DEVICE)
    recent = {seen.network for seen in history if now - seen.at <= RAPID_WINDOW}
    if len(recent | {network}) >= RAPID_NETWORKS:
        reasons.append(RAPID_CHANGE)
    return Assessment(network, device, tuple(reasons), True)


def parse_cidrs(text: str | Sequence[str]) -> tuple[Network, ...]:
    """Space/comma separated CIDRs (or a list); ValueError names the bad one."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR: {str(item)[:64]!r}") from None
    return tuple(networks)


def inside(ip: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)

