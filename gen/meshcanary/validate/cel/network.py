"""Kubernetes' IP and CIDR libraries: `ip(s)`, `isIP(s)`, `ip.isCanonical(s)`, `cidr(s)`,
`isCIDR(s)`, `string()` of either, on an IP `family()`, `isUnspecified()`, `isLoopback()`,
`isLinkLocalMulticast()`, `isLinkLocalUnicast()`, `isGlobalUnicast()`, and on a CIDR
`containsIP()`, `containsCIDR()` (of a value or a string), `ip()`, `masked()` and
`prefixLength()`.

Addresses are read as Go's net/netip reads them, with the API server's refusals: no zone
(`fe80::1%eth0`), no IPv4-mapped IPv6 address (`::ffff:1.2.3.4`), no leading zeros in IPv4
octets. A CIDR keeps its address as written (`192.168.0.1/24`); `masked()` clears the host
bits. `containsCIDR` is true when the other network lies inside this one.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cel_expr_python import cel

from meshcanary.validate.cel import opaque
from meshcanary.validate.cel.opaque import BOOL, INT, STRING, TYPE, function, member

IP_KIND, CIDR_KIND = "net.IP", "net.CIDR"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LINK_LOCAL_V4 = ipaddress.IPv4Network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.IPv6Network("fe80::/10")
_MULTICAST_LINK_LOCAL_V4 = ipaddress.IPv4Network("224.0.0.0/24")


def parse_ip(text: str) -> Address:
    """An address as the API server accepts one; ValueError with its message if not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f'IP Address "{text}" parse error during conversion from string: '
            f"ParseAddr({text!r}): not an IP address"
        ) from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise ValueError(f'IP address "{text}" with zone value is not allowed')
        if address.ipv4_mapped is not None:
            raise ValueError(f'IPv4-mapped IPv6 address "{text}" is not allowed')
    return address


def parse_cidr(text: str) -> tuple[Address, int]:
    """The address (host bits kept) and prefix length of a CIDR, as netip.ParsePrefix reads it."""

    def refuse(why: str) -> ValueError:
        return ValueError(
            "network address parse error during conversion from string: "
            f"netip.ParsePrefix({text!r}): {why}"
        )

    address_text, slash, bits_text = text.rpartition("/")
    if not slash:
        raise refuse("no '/'")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        raise refuse("not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise refuse("IPv6 zones cannot be present in a prefix")
        if address.ipv4_mapped is not None:
            raise ValueError(f'IPv4-mapped IPv6 address "{text}" is not allowed')
    digits = bits_text.isascii() and bits_text.isdigit()
    if not digits or (len(bits_text) > 1 and bits_text[0] == "0"):
        raise refuse(f'bad bits after slash: "{bits_text}"')
    if int(bits_text) > address.max_prefixlen:
        raise refuse("prefix length out of range")
    return address, int(bits_text)


def _network(address: Address, bits: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(f"{address}/{bits}", strict=False)


def _ip(value: Any) -> Address:
    return ipaddress.ip_address(opaque.unwrap(IP_KIND, value))


def _cidr(value: Any) -> tuple[Address, int]:
    address, _, bits = opaque.unwrap(CIDR_KIND, value).rpartition("/")
    return ipaddress.ip_address(address), int(bits)


def _wrap_cidr(address: Address, bits: int) -> dict[str, str]:
    return opaque.wrap(CIDR_KIND, f"{address}/{bits}")


def is_link_local_unicast(address: Address) -> bool:
    return address in (_LINK_LOCAL_V4 if address.version == 4 else _LINK_LOCAL_V6)


def is_global_unicast(address: Address) -> bool:
    """netip's IsGlobalUnicast: private and unique-local addresses count; link-local do not."""
    if isinstance(address, ipaddress.IPv4Address) and int(address) in (0, 2**32 - 1):
        return False
    return not (
        address.is_unspecified
        or address.is_loopback
        or address.is_multicast
        or is_link_local_unicast(address)
    )


def is_link_local_multicast(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return address in _MULTICAST_LINK_LOCAL_V4
    return int(address) >> 112 & 0xFF0F == 0xFF02  # ff02::/16 of any flags, as netip


def _contains_ip(cidr: Any, other: Any) -> bool:
    address, bits = _cidr(cidr)
    target = parse_ip(other) if isinstance(other, str) else _ip(other)
    return target.version == address.version and target in _network(address, bits)


def _contains_cidr(cidr: Any, other: Any) -> bool:
    address, bits = _cidr(cidr)
    inner, inner_bits = parse_cidr(other) if isinstance(other, str) else _cidr(other)
    if inner.version != address.version or inner_bits < bits:
        return False
    return _network(inner, bits) == _network(address, bits)


def _to_string(value: Any) -> str:
    if opaque.kind_of(value) == IP_KIND:
        return opaque.unwrap(IP_KIND, value)
    return opaque.unwrap(CIDR_KIND, value)


def _valid(parse: Any) -> Any:
    def check(text: str) -> bool:
        try:
            parse(text)
        except ValueError:
            return False
        return True

    return check


def library() -> Any:
    def ip_of(text: str) -> dict[str, str]:
        return opaque.wrap(IP_KIND, str(parse_ip(text)))

    def cidr_of(text: str) -> dict[str, str]:
        return _wrap_cidr(*parse_cidr(text))

    def masked(value: Any) -> dict[str, str]:
        address, bits = _cidr(value)
        return _wrap_cidr(_network(address, bits).network_address, bits)

    def is_canonical(text: str) -> bool:
        return str(parse_ip(text)) == text

    predicates = {
        "isUnspecified": lambda a: _ip(a).is_unspecified,
        "isLoopback": lambda a: _ip(a).is_loopback,
        "isLinkLocalMulticast": lambda a: is_link_local_multicast(_ip(a)),
        "isLinkLocalUnicast": lambda a: is_link_local_unicast(_ip(a)),
        "isGlobalUnicast": lambda a: is_global_unicast(_ip(a)),
    }
    return cel.CelExtension(
        "kubernetes.net",
        [
            cel.FunctionDecl(
                "ip",
                [
                    function("ip", TYPE, [STRING], ip_of),
                    member("ip", TYPE, [TYPE], lambda c: opaque.wrap(IP_KIND, str(_cidr(c)[0]))),
                ],
            ),
            cel.FunctionDecl("isIP", [function("isIP", BOOL, [STRING], _valid(parse_ip))]),
            cel.FunctionDecl(
                "ip.isCanonical", [function("ip.isCanonical", BOOL, [STRING], is_canonical)]
            ),
            cel.FunctionDecl("cidr", [function("cidr", TYPE, [STRING], cidr_of)]),
            cel.FunctionDecl("isCIDR", [function("isCIDR", BOOL, [STRING], _valid(parse_cidr))]),
            cel.FunctionDecl("string", [function("string", STRING, [TYPE], _to_string)]),
            cel.FunctionDecl("family", [member("family", INT, [TYPE], lambda a: _ip(a).version)]),
            *(
                cel.FunctionDecl(name, [member(name, BOOL, [TYPE], predicate)])
                for name, predicate in predicates.items()
            ),
            cel.FunctionDecl(
                "containsIP",
                [
                    member("containsIP", BOOL, [TYPE, STRING], _contains_ip),
                    member("containsIP", BOOL, [TYPE, TYPE], _contains_ip),
                ],
            ),
            cel.FunctionDecl(
                "containsCIDR",
                [
                    member("containsCIDR", BOOL, [TYPE, STRING], _contains_cidr),
                    member("containsCIDR", BOOL, [TYPE, TYPE], _contains_cidr),
                ],
            ),
            cel.FunctionDecl("masked", [member("masked", TYPE, [TYPE], masked)]),
            cel.FunctionDecl(
                "prefixLength", [member("prefixLength", INT, [TYPE], lambda c: _cidr(c)[1])]
            ),
        ],
    )
