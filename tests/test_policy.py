"""Pure tests of path policy: whitelist, forbidden paths, ssconf value, disk paths."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glusterd_mgr.core.errors import PathRefused
from glusterd_mgr.core.policy import (
    DEFAULT_DISK_FOLDER,
    DEFAULT_STORAGE_DIR,
    FILE_STORAGE_PATHS,
    FORBIDDEN_PATHS,
    DiskPath,
    check_disk_path,
    check_storage_dir,
    is_below,
    parse_ssconf_storage_dir,
    parse_whitelist,
)

from .support.compat import characters

WL_FILE = FILE_STORAGE_PATHS
WHITELIST = ["/srv/ganeti", "/var/run/ganeti/gluster"]
UUID = "0e3b8d2a-5f7c-4d1e-9a2b-6c8d0f1e2a3b"

# -- whitelist -----------------------------------------------------------------


def test_parse_whitelist() -> None:
    text = "\n".join(
        [
            "# Ganeti file storage paths",
            "",
            "/srv/ganeti",
            "   /var/run/ganeti/gluster/   ",
            "\t# indented comment",
            "relative/path",
            "./also-relative",
            "/srv/a/../b//c/.",
            "   ",
            "/srv/ganeti  # not a comment: part of the path",
            "//srv/double",
        ]
    )
    assert parse_whitelist(text) == [
        "/srv/ganeti",
        "/var/run/ganeti/gluster",
        "/srv/b/c",
        "/srv/ganeti  # not a comment: part of the path",
        "/srv/double",
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n", "relative\n"])
def test_parse_whitelist_empty(text: str) -> None:
    assert parse_whitelist(text) == []


# -- check_storage_dir ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/srv/ganeti",
        "/srv/ganeti/",
        "/srv/ganeti/gluster",
        "/srv/ganeti/a/b/c",
        "/srv/ganeti/x/../gluster",
        "/var/run/ganeti/gluster",
        "//srv/ganeti/gluster",
    ],
)
def test_storage_dir_accepted(path: str) -> None:
    check_storage_dir(path, WHITELIST, WL_FILE)  # accepted: does not raise


@pytest.mark.parametrize(
    "path",
    ["/srv", "/srv/ganeti2", "/srv/ganetix/gluster", "/srv/ganeti/../other", "/var/run/ganeti", "/opt/gluster", "/tmp"],
)
def test_storage_dir_not_whitelisted_names_the_file(path: str) -> None:
    with pytest.raises(PathRefused) as caught:
        check_storage_dir(path, WHITELIST, "/etc/ganeti/file-storage-paths")
    assert "/etc/ganeti/file-storage-paths" in caught.value.message
    assert "not whitelisted" in caught.value.message
    assert caught.value.data == {"file": "/etc/ganeti/file-storage-paths"}


def test_storage_dir_with_empty_whitelist() -> None:
    with pytest.raises(PathRefused, match="custom-whitelist"):
        check_storage_dir("/srv/ganeti", [], "/custom-whitelist")


FORBIDDEN_CASES = [
    *sorted(FORBIDDEN_PATHS),
    "/",
    "//",
    "/etc/x",
    "/etc/ganeti/gluster",
    "/usr/lib/x",
    "/usr/local/sbin",
    "/usr/local/lib64/gluster",
    "/lib32/x",
    "/boot/efi",
    "/home/user/gluster",
    "/root/gluster",
    "/proc/self",
    "/sys/fs/fuse",
    "/dev/shm/gluster",
    "/srv/../etc/gluster",
    "//etc/ganeti",
    "///usr/bin",
    "/etc/",
]


def test_forbidden_list_is_ganetis() -> None:
    expected = {"/boot", "/dev", "/etc", "/home", "/proc", "/root", "/sys"}
    for prefix in ("", "/usr", "/usr/local"):
        expected |= {f"{prefix}/{name}" for name in ("bin", "lib", "lib32", "lib64", "sbin")}
    assert FORBIDDEN_PATHS == expected


@pytest.mark.parametrize("path", FORBIDDEN_CASES)
def test_forbidden_paths_refused_even_when_whitelisted(path: str) -> None:
    with pytest.raises(PathRefused, match="forbids"):
        check_storage_dir(path, ["/"], WL_FILE)


@pytest.mark.parametrize("path", ["/usr", "/usr/local", "/usr/share/gluster", "/bins", "/etcetera", "/var/lib/x"])
def test_near_forbidden_but_allowed(path: str) -> None:
    check_storage_dir(path, ["/"], WL_FILE)  # accepted: does not raise


@pytest.mark.parametrize(
    "path", ["/srv/ganeti/my gluster", "/srv/ganeti/tab\there", "/srv/ganeti/new\nline", "/srv/ganeti/x\u00a0y", " /srv/ganeti"]
)
def test_whitespace_refused(path: str) -> None:
    with pytest.raises(PathRefused) as caught:
        check_storage_dir(path, [*WHITELIST, "/"], WL_FILE)
    assert "whitespace" in caught.value.message or "absolute" in caught.value.message


@pytest.mark.parametrize("path", ["", "srv/ganeti", "./srv/ganeti", "gluster"])
def test_relative_storage_dir_refused(path: str) -> None:
    with pytest.raises(PathRefused, match="absolute"):
        check_storage_dir(path, ["/"], WL_FILE)


@pytest.mark.parametrize(
    "parent, child, below",
    [
        ("/srv", "/srv", True),
        ("/srv", "/srv/", True),
        ("/srv/", "/srv/x", True),
        ("/srv", "/srv/x/y", True),
        ("/srv", "/srvx", False),
        ("/srv", "/sr", False),
        ("/srv", "/srv/../etc", False),
        ("/", "/anything", True),
        ("/", "/", True),
        ("/srv", "//srv/x", True),
        ("//srv", "/srv/x", True),
        ("/etc", "//etc", True),
    ],
)
def test_is_below(parent: str, child: str, below: bool) -> None:
    assert is_below(parent, child) is below


# -- ssconf ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        (None, DEFAULT_STORAGE_DIR),
        ("", DEFAULT_STORAGE_DIR),
        ("   ", DEFAULT_STORAGE_DIR),
        ("\n", DEFAULT_STORAGE_DIR),
        (" \t\n ", DEFAULT_STORAGE_DIR),
        ("/srv/ganeti/gluster", "/srv/ganeti/gluster"),
        ("/srv/ganeti/gluster\n", "/srv/ganeti/gluster"),
        ("  /srv/ganeti/gluster/  \n", "/srv/ganeti/gluster"),
        ("/srv/ganeti/./x/../gluster", "/srv/ganeti/gluster"),
    ],
)
def test_parse_ssconf_storage_dir(text: str | None, value: str) -> None:
    assert parse_ssconf_storage_dir(text) == value


def test_default_storage_dir_is_ganetis() -> None:
    assert DEFAULT_STORAGE_DIR == "/var/run/ganeti/gluster"
    check_storage_dir(DEFAULT_STORAGE_DIR, ["/var/run/ganeti"], WL_FILE)  # accepted: does not raise


# -- disk paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, folder, name",
    [
        (f"ganeti/{UUID}.0", ("ganeti",), f"{UUID}.0"),
        (f"ganeti/{UUID}.15", ("ganeti",), f"{UUID}.15"),
        ("ganeti/..x", ("ganeti",), "..x"),
        ("ganeti/" + "n" * 255, ("ganeti",), "n" * 255),
        ("ganeti/" + "é" * 127, ("ganeti",), "é" * 127),  # 254 bytes
        ("ganeti/with space", ("ganeti",), "with space"),
    ],
)
def test_disk_path_accepted(path: str, folder: tuple[str, ...], name: str) -> None:
    disk = check_disk_path(path)
    assert disk == DiskPath(folder=folder, name=name)
    assert disk.relative == path


def test_disk_path_custom_folder() -> None:
    disk = check_disk_path(f"disks/ganeti/{UUID}.0", "disks/ganeti")
    assert disk == DiskPath(folder=("disks", "ganeti"), name=f"{UUID}.0")
    assert disk.relative == f"disks/ganeti/{UUID}.0"
    with pytest.raises(PathRefused, match="disks/ganeti"):
        check_disk_path(f"ganeti/{UUID}.0", "disks/ganeti")
    with pytest.raises(PathRefused):
        check_disk_path(f"disks/{UUID}.0", "disks/ganeti")
    with pytest.raises(PathRefused):
        check_disk_path(f"disks/ganeti/x/{UUID}.0", "disks/ganeti")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "..",
        "ganeti/..",
        "ganeti/../etc",
        "../ganeti/x.0",
        f"ganeti/../ganeti/{UUID}.0",
        f"/ganeti/{UUID}.0",
        "/etc/passwd",
        f"ganeti/{UUID}\x00.0",
        f"ganeti//{UUID}.0",
        f"/{UUID}.0",
        "ganeti/",
        f"ganeti/{UUID}.0/",
        ".",
        "ganeti/.",
        f"./ganeti/{UUID}.0",
        f"ganeti/./{UUID}.0",
        f"other/{UUID}.0",
        f"Ganeti/{UUID}.0",
        f"{UUID}.0",
        "ganeti",
        f"ganeti/sub/{UUID}.0",
        f"ganeti/ganeti/{UUID}.0",
        "ganeti/a\nb",
        "ganeti/a\tb",
        "ganeti/a\x1bb",
        "ganeti/a\x7f",
        "ganeti/\udc80",
        "ganeti/" + "n" * 256,
        "ganeti/" + "é" * 128,  # 256 bytes in 128 characters
    ],
)
def test_disk_path_refused(path: str) -> None:
    with pytest.raises(PathRefused):
        check_disk_path(path)


@pytest.mark.parametrize("value", [None, 0, b"ganeti/x.0"])
def test_disk_path_not_a_string(value: Any) -> None:
    with pytest.raises(PathRefused):
        check_disk_path(value)


@pytest.mark.parametrize(
    "path, words",
    [
        ("", "empty"),
        ("ganeti/a\x00b", "NUL"),
        (f"/ganeti/{UUID}.0", "absolute"),
        ("ganeti/../x", "'..'"),
        ("ganeti/a\nb", "control"),
        ("ganeti/" + "n" * 256, "255 bytes"),
        ("other/x", "folder"),
    ],
)
def test_disk_path_messages(path: str, words: str) -> None:
    with pytest.raises(PathRefused) as caught:
        check_disk_path(path)
    assert words in caught.value.message


name_chars = characters(exclude_characters="/\x00", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn"))


@given(st.text(name_chars, min_size=1, max_size=40))
def test_any_plain_name_in_the_folder_is_accepted(name: str) -> None:
    if name in (".", "..") or not name.isprintable():
        with pytest.raises(PathRefused):
            check_disk_path(f"{DEFAULT_DISK_FOLDER}/{name}")
    else:
        assert check_disk_path(f"{DEFAULT_DISK_FOLDER}/{name}").name == name


@given(st.lists(st.sampled_from(["ganeti", "..", ".", "", "x", "/", "etc"]), min_size=1, max_size=6).map("/".join))
def test_accepted_disk_paths_stay_in_the_folder(path: str) -> None:
    try:
        disk = check_disk_path(path)
    except PathRefused:
        return
    parts = path.split("/")
    assert len(parts) == 2 and parts[0] == DEFAULT_DISK_FOLDER
    assert parts[1] not in ("", ".", "..")
    assert disk.relative == path
