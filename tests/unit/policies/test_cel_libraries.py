"""Kubernetes' CEL libraries (validate.cel), as policies and CRD rules use them.

The expected values are the examples of the Kubernetes API documentation of each library
(k8s.io/apiserver/pkg/cel/library): every function family compiles, passes and fails where
the API server's does, and a ValidatingAdmissionPolicy using them loads (its cost estimate
accepts them) and finds what it should.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from meshcanary.errors import InputError
from meshcanary.manifest import Parsed, Resource, parse_text
from meshcanary.policies import load
from meshcanary.validate.cel import CompileError, Engine, EvaluationError, quantity, urls


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(["self"])


def run(engine: Engine, expression: str, value: Any = None) -> Any:
    return engine.evaluate(engine.compile(expression, "dyn"), {"self": value})


CASES = [
    # quantity
    ("quantity('1.5G') == quantity('1500M')", True),
    ("isQuantity('1.3G') && isQuantity('1.3Gi') && isQuantity('10000k')", True),
    ("isQuantity('1,3G') || isQuantity('200K') || isQuantity('Three')", False),
    ("isQuantity('20Mo') || isQuantity('10Mm') || isQuantity('')", False),
    (
        "['1.1.M', '1+1.0M', '0.1mi', '0.1am', 'aoeu', '.5i', '1i', '-3.01e-'].exists(q, isQuantity(q))",
        False,
    ),
    ("isQuantity(' 1') || isQuantity('1 ') || isQuantity('1e2147483648')", False),
    # The documentation calls 'Mi' an error; resource.ParseQuantity reads no digits as 0.
    ("isQuantity('Mi') && quantity('Mi') == quantity('0') && isQuantity('1e2147483647')", True),
    ("quantity('200M') == quantity('0.2G') && quantity('0.2G') == quantity('200M')", True),
    ("quantity('2000k') == quantity('2M') && quantity('0.002G') == quantity('2000k')", True),
    ("quantity('200M') == quantity('0.3G')", False),
    ("quantity('50M').isLessThan(quantity('50Mi'))", True),
    ("quantity('100M').isLessThan(quantity('50M'))", False),
    ("quantity('50Mi').isGreaterThan(quantity('50M'))", True),
    ("quantity('50M').isGreaterThan(quantity('100M'))", False),
    ("quantity('200M').compareTo(quantity('0.2G'))", 0),
    ("quantity('50M').compareTo(quantity('50Mi'))", -1),
    ("quantity('50Mi').compareTo(quantity('50M'))", 1),
    ("quantity('50k').add(quantity('20')) == quantity('50.02k')", True),
    ("quantity('50k').add(20).isLessThan(quantity('50020'))", False),
    ("quantity('50k').sub(quantity('20')) == quantity('49.98k')", True),
    ("quantity('50k').sub(20) == quantity('49980')", True),
    ("quantity('50k').add(20).sub(quantity('100k')).sub(-50000).asInteger()", 20),
    ("quantity('50k').asInteger()", 50000),
    ("quantity('50000000G').isInteger() && quantity('50k').isInteger()", True),
    ("quantity('9999999999999999999999999999999999999G').isInteger()", False),
    ("quantity('50.703k').asApproximateFloat()", 50703.0),
    ("quantity('50k').sub(20000).asApproximateFloat() == 30000.0", True),
    ("[quantity('-1').sign(), sign(quantity('0')), quantity('1m').sign()]", [-1, 0, 1]),
    # url
    ("isURL('https://user:pass@example.com:80/path?query=val#fragment')", True),
    ("isURL('/absolute-path')", True),
    ("isURL('https://a:b:c/') || isURL('../relative-path')", False),
    ("url('/path').getScheme()", ""),
    ("url('https://example.com/').getScheme()", "https"),
    ("url('https://example.com:80/').getHost()", "example.com:80"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"),
    ("url('https://[::1]/').getHost()", "[::1]"),
    ("url('/path').getHost()", ""),
    ("url('https://example.com:80/').getHostname()", "example.com"),
    ("url('https://127.0.0.1:80/').getHostname()", "127.0.0.1"),
    ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('https://example.com:80/').getPort()", "80"),
    ("url('https://example.com/').getPort()", ""),
    ("url('https://example.com/path').getEscapedPath()", "/path"),
    ("url('https://example.com/path with spaces/').getEscapedPath()", "/path%20with%20spaces/"),
    ("url('https://example.com').getEscapedPath()", ""),
    ("url('https://example.com/path?k1=a&k2=b&k2=c').getQuery()", {"k1": ["a"], "k2": ["b", "c"]}),
    (
        "url('https://example.com/path?key with spaces=value with spaces').getQuery()",
        {"key with spaces": ["value with spaces"]},
    ),
    ("url('https://example.com/path?').getQuery()", {}),
    # ip
    ("isIP('127.0.0.1') && isIP('::1')", True),
    (
        "isIP('127.0.0.256') || isIP(':::1') || isIP('::ffff:1.2.3.4') || isIP('fe80::1%eth0')",
        False,
    ),
    ("isIP('127.0.0.01')", False),
    ("ip.isCanonical('127.0.0.1') && ip.isCanonical('2001:db8::abcd')", True),
    ("ip.isCanonical('2001:DB8::ABCD') || ip.isCanonical('2001:db8::0:0:0:abcd')", False),
    ("[ip('127.0.0.1').family(), ip('::1').family()]", [4, 6]),
    ("ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified()", True),
    ("ip('127.0.0.1').isUnspecified() || ip('::1').isUnspecified()", False),
    ("ip('127.0.0.1').isLoopback() && ip('::1').isLoopback()", True),
    ("ip('192.168.0.1').isLoopback() || ip('2001:db8::abcd').isLoopback()", False),
    ("ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()", True),
    ("ip('224.0.1.1').isLinkLocalMulticast() || ip('fd00::1').isLinkLocalMulticast()", False),
    ("ip('169.254.169.254').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()", True),
    ("ip('192.168.0.1').isLinkLocalUnicast() || ip('fd80::1').isLinkLocalUnicast()", False),
    ("ip('192.168.0.1').isGlobalUnicast() && ip('2001:db8::abcd').isGlobalUnicast()", True),
    ("ip('255.255.255.255').isGlobalUnicast() || ip('ff00::1').isGlobalUnicast()", False),
    ("string(ip('2001:DB8::1')) == '2001:db8::1' && ip('::1') == ip('0:0::1')", True),
    # cidr
    ("isCIDR('192.168.0.0/16') && isCIDR('::1/128')", True),
    ("isCIDR('192.168.0.0/33') || isCIDR('::1/129') || isCIDR('192.168.0.0/')", False),
    ("isCIDR('::ffff:1.2.3.4/24') || isCIDR('10.0.0.0/08')", False),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", True),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))", False),
    ("cidr('192.168.0.0/24').containsIP('192.168.0.1')", True),
    ("cidr('192.168.0.0/24').containsIP('192.168.1.1')", False),
    ("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))", True),
    ("cidr('192.168.1.0/24').containsCIDR(cidr('192.168.2.0/24'))", False),
    ("cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')", True),
    ("cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')", False),
    ("cidr('192.168.0.0/24').containsCIDR('192.168.0.0/23')", False),
    ("cidr('2001:db8::/32').containsIP('2001:db8::1')", True),
    (
        "cidr('2001:db8::/32').containsIP('2001:dc8::1') || cidr('::/0').containsIP('1.2.3.4')",
        False,
    ),
    ("cidr('192.168.0.1/24').ip() == ip('192.168.0.1')", True),
    ("cidr('192.168.0.1/24').ip().family()", 4),
    ("cidr('::1/128').ip().family()", 6),
    ("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.0/24') == cidr('192.168.0.0/24').masked()", True),
    ("cidr('192.168.0.1/24') == cidr('192.168.0.1/24').masked()", False),
    ("[cidr('192.168.0.0/16').prefixLength(), cidr('::1/128').prefixLength()]", [16, 128]),
    ("string(cidr('2001:db8:1::/32').masked())", "2001:db8::/32"),
    # semver
    ("isSemver('1.0.0') && isSemver('0.1.0-alpha.1') && isSemver('1.0.0-rc.1+build.5')", True),
    ("isSemver('hello') || isSemver('v1.0') || isSemver('1.0') || isSemver('01.1.1')", False),
    ("isSemver('v1.0', true) && isSemver('01.01.01', true)", True),
    ("semver('v1.0.0', true) == semver('1.0.0') && semver('1.0', true) == semver('1.0.0')", True),
    ("semver('01.01.01', true) == semver('1.1.1')", True),
    ("semver('1.2.3').major() + semver('1.2.3').minor() * 10 + semver('1.2.3').patch() * 100", 321),
    ("semver('1.2.3').compareTo(semver('1.2.3'))", 0),
    ("semver('1.2.3').compareTo(semver('2.0.0'))", -1),
    ("semver('1.2.3').compareTo(semver('0.1.2'))", 1),
    ("semver('1.0.0-alpha').isLessThan(semver('1.0.0-alpha.1'))", True),
    ("semver('1.0.0-alpha.beta').isLessThan(semver('1.0.0-beta'))", True),
    ("semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))", True),
    (
        "semver('1.0.0-2').isLessThan(semver('1.0.0-11')) && semver('1.9.0').isLessThan(semver('1.10.0'))",
        True,
    ),
    (
        "semver('1.0.0+a') == semver('1.0.0+b') && semver('2.0.0').isGreaterThan(semver('1.99.0'))",
        True,
    ),
    # regex
    ("'abc 123'.find('[0-9]+')", "123"),
    ("'abc'.find('[0-9]+')", ""),
    ("'123 abc 456'.findAll('[0-9]+')", ["123", "456"]),
    ("'123 abc 456'.findAll('[0-9]+', 1)", ["123"]),
    ("'123 abc 456'.findAll('xyz')", []),
    ("'baaab'.findAll('a*')", ["", "aaa", ""]),
    ("'line\\n'.find('e$')", ""),
    ("'ab'.find('[[:alpha:]]+')", "ab"),
    # lists, sets, strings, two-variable comprehensions
    (
        "[1, 2, 3].sum() == 6 && [3, 1].min() == 1 && [1, 2].isSorted() && [1, 2, 1].lastIndexOf(1) == 2",
        True,
    ),
    (
        "sets.contains([1, 2, 3], [3, 1]) && sets.equivalent([1, 1], [1]) && sets.intersects([1], [1, 2])",
        True,
    ),
    ("'%s has %d'.format(['x', 2])", "x has 2"),
    ("{'a': 1, 'b': 2}.all(k, v, v > 0) && [10, 20].exists(i, v, i == 1 && v == 20)", True),
    ("cel.bind(x, 'a', x + x)", "aa"),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_library_functions(engine: Engine, expression: str, expected: Any) -> None:
    assert run(engine, expression) == expected


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("quantity('200K')", "unable to parse quantity's suffix"),
        ("quantity('10Mo')", "quantities must match the regular expression"),
        ("quantity('9999999999999999999999999999999999999G').asInteger()", "cannot convert value"),
        ("url('https://a:b:c/')", 'invalid port ":c" after host'),
        ("url('../relative-path')", "invalid URI for request"),
        ("ip('127.0.0.256')", "parse error"),
        ("ip('::ffff:1.2.3.4')", "IPv4-mapped IPv6 address"),
        ("ip('fe80::1%eth0')", "with zone value is not allowed"),
        ("cidr('192.168.0.0/33')", "prefix length out of range"),
        ("semver('200K')", "No Major.Minor.Patch elements found"),
        ("semver('1.0', true) == semver('1.0-rc', true)", "short version cannot contain"),
        ("'a'.find('(')", "Illegal regex"),
        ("'a'.find('\\\\pL')", "not supported offline"),
        ("quantity('1').compareTo(semver('1.0.0'))", "no such overload"),
        ("[].min()", "empty"),
    ],
)
def test_library_errors(engine: Engine, expression: str, error: str) -> None:
    with pytest.raises(EvaluationError, match=error):
        run(engine, expression)


@pytest.mark.parametrize(
    "expression",
    ["isQuantity([1, 2])", "'a'.family()", "url(1)", "semver('1.0.0').major(1)", "1.find('a')"],
)
def test_wrong_arguments_do_not_compile(engine: Engine, expression: str) -> None:
    with pytest.raises(CompileError, match=r"no matching overload|undeclared reference"):
        engine.compile(expression, "dyn")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.5Gi", "1610612736"),
        ("100m", "0.1"),
        ("1e3", "1000"),
        ("1E", "1000000000000000000"),
        ("-0.5", "-0.5"),
        ("0.0000000001", "0.000000001"),  # rounded up to a nano, never down to 0
        ("-0.0000000001", "-0.000000001"),
        ("+.5k", "500"),
        ("12345678901234567890Ei", "9223372036854775807"),  # binary values cap at 2^63-1
        ("00012", "12"),
        ("-", "0"),
    ],
)
def test_quantity_values(text: str, value: str) -> None:
    assert quantity.parse(text) == quantity.parse(value)
    assert quantity.canonical(quantity.parse(text)) == quantity.canonical(quantity.parse(value))


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("https://user:p%40ss@Example.com:8443/a%2Fb/c?x=1#frag", ("https", "Example.com:8443")),
        ("HTTP://example.com", ("http", "example.com")),
        ("mailto:someone@example.com", ("mailto", "")),
        ("/only/a/path", ("", "")),
        ("*", ("", "")),
    ],
)
def test_url_parts(text: str, parts: tuple[str, str]) -> None:
    parsed = urls.parse(text, request=False)
    assert (parsed.scheme, parsed.host) == parts
    assert urls.escaped_path(urls.parse("https://x/a%2Fb/c", request=False)) == "/a%2Fb/c"


# Through a ValidatingAdmissionPolicy ----------------------------------------------------------

POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: limits
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        resources: [configmaps]
        operations: [CREATE, UPDATE]
  validations:
    - expression: >-
        !has(object.data.memory) ||
        quantity(object.data.memory).compareTo(quantity('512Mi')) <= 0
      message: memory over 512Mi
    - expression: "!has(object.data.endpoint) || url(object.data.endpoint).getScheme() == 'https'"
      message: endpoint is not https
    - expression: "!has(object.data.allowed) || isCIDR(object.data.allowed)"
      message: allowed is not a CIDR
    - expression: >-
        !has(object.data.version) ||
        semver(object.data.version, true).isGreaterThan(semver('1.27.0'))
      message: version too old
"""


def config_map(data: dict[str, str]) -> list[Resource]:
    body = "".join(f"  {key}: {value!r}\n" for key, value in data.items())
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: x\ndata:\n{body}"
    parsed = Parsed()
    parse_text(textwrap.dedent(text), "c.yaml", parsed)
    assert not parsed.problems
    return parsed.resources


def test_policy_with_the_libraries_loads_and_evaluates(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "limits.yaml").write_text(POLICY)
    policies = load([folder], tmp_path)
    good = {
        "memory": "256Mi",
        "endpoint": "https://api",
        "allowed": "10.0.0.0/8",
        "version": "v1.30",
    }
    assert policies.evaluate(config_map(good)) == []
    bad = {"memory": "1Gi", "endpoint": "http://api", "allowed": "10.0.0.0/33", "version": "1.2"}
    found = policies.evaluate(config_map(bad))
    assert sorted(problem.message for problem in found) == [
        "allowed is not a CIDR",
        "endpoint is not https",
        "memory over 512Mi",
        "version too old",
    ]
    invalid = policies.evaluate(config_map({"memory": "lots"}))
    assert len(invalid) == 1 and "quantities must match" in invalid[0].message


def test_policy_type_errors_are_located(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "limits.yaml").write_text(POLICY.replace("isCIDR(object.data.allowed)", "isCIDR(1)"))
    with pytest.raises(InputError) as caught:
        load([folder], tmp_path)
    assert "no matching overload for 'isCIDR'" in caught.value.problems[0].message
