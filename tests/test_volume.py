"""Pure tests of volume identity: mount sources, same-volume matching, spec validation, URIs and keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glusterd_mgr.core.errors import InvalidParams
from glusterd_mgr.core.volume import DEFAULT_PORT, DEFAULT_VOLUME, LOCAL_HOST, MountSource, VolumeSpec, is_ipv6, parse_source, same_volume

# -- parse_source -------------------------------------------------------------


@pytest.mark.parametrize(
    "source, host, volume",
    [
        ("gs1:/gv0", "gs1", "gv0"),
        ("gs1.example.org:/gv0", "gs1.example.org", "gv0"),
        ("gs1:gv0", "gs1", "gv0"),
        ("gs1:/gv0/", "gs1", "gv0"),
        ("gs1://gv0//", "gs1", "gv0"),
        ("gs1:/gv0.rdma", "gs1", "gv0"),
        ("gs1:/gv0.tcp", "gs1", "gv0"),
        ("10.0.0.2:/gv0", "10.0.0.2", "gv0"),
        ("10.0.0.2:gv0.tcp", "10.0.0.2", "gv0"),
        ("[fe80::1]:/gv0", "fe80::1", "gv0"),
        ("[fe80::1]:gv0", "fe80::1", "gv0"),
        ("[fd00::2]:/gv0.rdma", "fd00::2", "gv0"),
        ("::1:/gv0", "::1", "gv0"),
        ("fe80::1:/gv0", "fe80::1", "gv0"),
        ("gs1:/gv0/dir", "gs1", "gv0/dir"),
        ("gs1:/gv0/dir/sub/", "gs1", "gv0/dir/sub"),
    ],
)
def test_parse_source(source: str, host: str, volume: str) -> None:
    assert parse_source(source) == MountSource(host=host, volume=volume)


@pytest.mark.parametrize(
    "source",
    ["none", "", "tmpfs", "/dev/sda1", "gs1:", "gs1:/", "gs1://", ":/gv0", ":gv0", "gs1:.tcp", "gs1:/.rdma", "[fe80::1]:"],
)
def test_parse_source_refuses_garbage(source: str) -> None:
    assert parse_source(source) is None


# -- same_volume ---------------------------------------------------------------

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    "spec, source, spec_addresses, source_addresses, same",
    [
        # same spelling, no resolution needed
        (VolumeSpec("gs1"), "gs1:/gv0", NONE, NONE, True),
        (VolumeSpec("GS1.Example.org"), "gs1.example.org:/gv0", NONE, NONE, True),
        (VolumeSpec("10.0.0.2"), "10.0.0.2:/gv0", NONE, NONE, True),
        (VolumeSpec("fe80::1"), "[fe80::1]:/gv0", NONE, NONE, True),
        (VolumeSpec("FE80::1"), "fe80::1:/gv0", NONE, NONE, True),
        (VolumeSpec("::1"), "::1:/gv0", NONE, NONE, True),
        (VolumeSpec("gs1"), "gs1:/gv0.tcp", NONE, NONE, True),
        (VolumeSpec("gs1"), "gs1:gv0/", NONE, NONE, True),
        # empty host means this node, mounted from 127.0.0.1
        (VolumeSpec(""), "127.0.0.1:/gv0", NONE, NONE, True),
        (VolumeSpec(""), "localhost:/gv0", frozenset({"127.0.0.1"}), frozenset({"127.0.0.1", "::1"}), True),
        # a name and an address of one server, through injected resolution
        (VolumeSpec("gs1"), "10.0.0.2:/gv0", frozenset({"10.0.0.2"}), frozenset({"10.0.0.2"}), True),
        (VolumeSpec("10.0.0.2"), "gs1:/gv0", frozenset({"10.0.0.2"}), frozenset({"10.0.0.2", "fd00::2"}), True),
        (VolumeSpec("gs6"), "[fd00::2]:/gv0", frozenset({"fd00::2"}), frozenset({"fd00::2"}), True),
        (VolumeSpec("fd00::2"), "gs6:/gv0", frozenset({"fd00::2", "10.0.0.2"}), frozenset({"fd00::2"}), True),
        # different servers
        (VolumeSpec("gs1"), "gs2:/gv0", frozenset({"10.0.0.2"}), frozenset({"10.0.0.3"}), False),
        (VolumeSpec("gs1"), "gs2:/gv0", NONE, NONE, False),  # neither resolves: names differ
        (VolumeSpec("gs1"), "10.0.0.2:/gv0", NONE, frozenset({"10.0.0.2"}), False),
        (VolumeSpec("fe80::1"), "[fe80::2]:/gv0", frozenset({"fe80::1"}), frozenset({"fe80::2"}), False),
        (VolumeSpec(""), "10.0.0.9:/gv0", frozenset({"127.0.0.1", "10.0.0.2"}), frozenset({"10.0.0.9"}), False),
        # different volume names on the same server
        (VolumeSpec("gs1", volume="gv0"), "gs1:/gv1", NONE, NONE, False),
        (VolumeSpec("gs1", volume="gv0"), "10.0.0.2:/gv1", frozenset({"10.0.0.2"}), frozenset({"10.0.0.2"}), False),
        (VolumeSpec("gs1", volume="gv0"), "gs1:/GV0", NONE, NONE, False),
        # a sub-directory mount is never the whole volume
        (VolumeSpec("gs1", volume="gv0"), "gs1:/gv0/dir", NONE, NONE, False),
        (VolumeSpec("gs1", volume="gv0"), "gs1:/gv0/dir", frozenset({"10.0.0.2"}), frozenset({"10.0.0.2"}), False),
        (VolumeSpec("gs1", volume="gv0"), "gs1:/gv0/gv0", NONE, NONE, False),
    ],
)
def test_same_volume(spec: VolumeSpec, source: str, spec_addresses: frozenset[str], source_addresses: frozenset[str], same: bool) -> None:
    parsed = parse_source(source)
    assert parsed is not None
    assert same_volume(spec, parsed, spec_addresses, source_addresses) is same


def test_same_volume_ignores_the_port() -> None:
    """The mount table does not record the port: any port of the same server and volume matches."""
    source = parse_source("gs1:/gv0")
    assert source is not None
    assert same_volume(VolumeSpec("gs1", port=24008), source, NONE, NONE)


# -- VolumeSpec validation --------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"host": "bad host"}, "volume.host"),
        ({"host": "-gs1"}, "volume.host"),
        ({"host": "gs1..example"}, "volume.host"),
        ({"host": "gs_1"}, "volume.host"),
        ({"host": "[fe80::1]"}, "volume.host"),
        ({"host": "fe80::1::2"}, "volume.host"),
        ({"host": "gs1:24007"}, "volume.host"),
        ({"host": "gs1/x"}, "volume.host"),
        ({"host": "gs1\n"}, "volume.host"),
        ({"host": "a" * 64}, "volume.host"),  # a label is at most 63
        ({"host": ".".join(["a" * 63] * 4) + "b"}, "volume.host"),  # 256 > 253
        ({"host": "gs1", "port": 0}, "volume.port"),
        ({"host": "gs1", "port": -1}, "volume.port"),
        ({"host": "gs1", "port": 65536}, "volume.port"),
        ({"host": "gs1", "port": True}, "volume.port"),
        ({"host": "gs1", "port": "24007"}, "volume.port"),
        ({"host": "gs1", "port": 24007.0}, "volume.port"),
        ({"host": "gs1", "port": None}, "volume.port"),
        ({"host": "gs1", "volume": ""}, "volume.volume"),
        ({"host": "gs1", "volume": "gv 0"}, "volume.volume"),
        ({"host": "gs1", "volume": "gv0/dir"}, "volume.volume"),
        ({"host": "gs1", "volume": "gv0.tcp"}, "volume.volume"),
        ({"host": "gs1", "volume": "-gv0"}, "volume.volume"),
        ({"host": "gs1", "volume": "a" * 65}, "volume.volume"),
        ({"host": "gs1", "volume": "gv0\n"}, "volume.volume"),
        ({"host": "gs1", "volume": "gv0\t"}, "volume.volume"),
    ],
)
def test_volume_spec_refuses(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        VolumeSpec(**kwargs)
    assert caught.value.data["field"] == field
    assert caught.value.to_json()["data"]["field"] == field
    assert caught.value.code == -32602


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": ""},
        {"host": "gs1"},
        {"host": "gs1.example.org."},
        {"host": "a" * 63},
        {"host": ".".join(["a" * 63] * 4)[:253]},
        {"host": "10.0.0.2"},
        {"host": "fe80::1"},
        {"host": "::1"},
        {"host": "gs1", "port": 1},
        {"host": "gs1", "port": 65535},
        {"host": "gs1", "volume": "a" * 64},
        {"host": "gs1", "volume": "_gv-0"},
        {"host": "gs1", "volume": "0"},
    ],
)
def test_volume_spec_accepts(kwargs: dict[str, Any]) -> None:
    spec = VolumeSpec(**kwargs)
    assert spec.to_json() == {
        "host": kwargs["host"],
        "port": kwargs.get("port", DEFAULT_PORT),
        "volume": kwargs.get("volume", DEFAULT_VOLUME),
    }
    assert VolumeSpec.from_json(spec.to_json()) == spec


def test_from_json_defaults() -> None:
    assert VolumeSpec.from_json({}) == VolumeSpec(host="", port=DEFAULT_PORT, volume=DEFAULT_VOLUME)
    with pytest.raises(InvalidParams) as caught:
        VolumeSpec.from_json({"host": "gs1", "port": "x"})
    assert caught.value.data == {"field": "volume.port"}


# -- uri, key, mount source ----------------------------------------------------------


@pytest.mark.parametrize(
    "spec, path, uri",
    [
        (VolumeSpec("gs1"), "ganeti/u.0", "gluster://gs1:24007/gv0/ganeti/u.0"),
        (VolumeSpec("gs1", 24008, "data"), "/ganeti/u.1", "gluster://gs1:24008/data/ganeti/u.1"),
        (VolumeSpec("10.0.0.2"), "ganeti/u.0", "gluster://10.0.0.2:24007/gv0/ganeti/u.0"),
        (VolumeSpec("fe80::1"), "ganeti/u.0", "gluster://[fe80::1]:24007/gv0/ganeti/u.0"),
        (VolumeSpec("::1", 1), "//ganeti/u.0", "gluster://[::1]:1/gv0/ganeti/u.0"),
        (VolumeSpec(""), "ganeti/u.0", f"gluster://{LOCAL_HOST}:24007/gv0/ganeti/u.0"),
    ],
)
def test_uri(spec: VolumeSpec, path: str, uri: str) -> None:
    assert spec.uri(path) == uri


@pytest.mark.parametrize(
    "spec, key, mount_source",
    [
        (VolumeSpec("gs1"), "gs1:24007/gv0", "gs1:/gv0"),
        (VolumeSpec("10.0.0.2", 24008, "data"), "10.0.0.2:24008/data", "10.0.0.2:/data"),
        (VolumeSpec("fe80::1"), "[fe80::1]:24007/gv0", "fe80::1:/gv0"),
        (VolumeSpec(""), ":24007/gv0", "127.0.0.1:/gv0"),
    ],
)
def test_key_and_mount_source(spec: VolumeSpec, key: str, mount_source: str) -> None:
    assert spec.key == key
    assert spec.mount_source == mount_source
    assert spec.mount_host == (spec.host or LOCAL_HOST)


def test_key_tells_this_node_from_its_address() -> None:
    assert VolumeSpec("").key != VolumeSpec(LOCAL_HOST).key


@pytest.mark.parametrize("host, v6", [("fe80::1", True), ("::1", True), ("10.0.0.2", False), ("gs1", False), ("", False), ("a:b", False)])
def test_is_ipv6(host: str, v6: bool) -> None:
    assert is_ipv6(host) is v6


# -- properties ---------------------------------------------------------------

label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10})", fullmatch=True)
hosts = st.one_of(
    st.just(""),
    st.lists(label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses().map(str),
)
volumes = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}", fullmatch=True)
specs = st.builds(VolumeSpec, host=hosts, port=st.integers(1, 65535), volume=volumes)


@given(specs)
def test_mount_source_parses_back(spec: VolumeSpec) -> None:
    assert parse_source(spec.mount_source) == MountSource(spec.mount_host, spec.volume)
    bracketed = f"[{spec.mount_host}]" if is_ipv6(spec.mount_host) else spec.mount_host
    for form in (f"{bracketed}:/{spec.volume}", f"{bracketed}:{spec.volume}/", f"{bracketed}:/{spec.volume}.tcp"):
        source = parse_source(form)
        assert source == MountSource(spec.mount_host, spec.volume)
        assert same_volume(spec, source, NONE, NONE)
    subdir = parse_source(f"{spec.mount_source}/dir")
    assert subdir is not None
    assert not same_volume(spec, subdir, frozenset({"10.0.0.1"}), frozenset({"10.0.0.1"}))


@given(specs)
def test_key_parses_back(spec: VolumeSpec) -> None:
    """The key is one line and names host, port and volume unambiguously."""
    rest, _, volume = spec.key.rpartition("/")
    host, _, port = rest.rpartition(":")
    if host.startswith("["):
        host = host[1:-1]
    assert VolumeSpec(host, int(port), volume) == spec
    assert "\n" not in spec.key


@given(specs)
def test_uri_names_the_volume_and_path(spec: VolumeSpec) -> None:
    uri = spec.uri("ganeti/u.0")
    assert uri.startswith("gluster://")
    assert uri.endswith(f":{spec.port}/{spec.volume}/ganeti/u.0")
