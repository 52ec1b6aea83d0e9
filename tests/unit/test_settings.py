"""``app.settings.parse_args``: flags, the TOML file, which wins, and what is refused (argparse: SystemExit(2), message on stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest

from glusterd_mgr.app.settings import Settings, engine_config, parse_args
from glusterd_mgr.core import fuse_client


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ganeti-gluster-mountd"), err
    return err


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mountd.toml"
    path.write_text(text)
    return str(path)


def test_no_arguments_give_the_defaults() -> None:
    assert parse_args([]) == Settings()
    assert Settings().client_oom_score_adj == fuse_client.DEFAULT_OOM_SCORE_ADJ


def test_flags_set_each_kind_of_setting() -> None:
    s = parse_args(
        [
            "--socket=/tmp/s",
            "--metrics-port",
            "0",
            "--mount-timeout",
            "2.5",
            "--unmount-mode",
            "lazy",
            "--backup-volfile-servers",
            "a",
            "--backup-volfile-servers",
            "b",
            "--client-oom-score-adj",
            "-1000",
            "--client-memory-warning-mib",
            "0",
            "--log-level",
            "debug",
        ]
    )
    assert (s.socket, s.metrics_port, s.mount_timeout, s.unmount_mode) == ("/tmp/s", 0, 2.5, "lazy")
    assert s.backup_volfile_servers == ["a", "b"] and s.log_level == "debug"
    assert (s.client_oom_score_adj, s.client_memory_warning_mib) == (-1000, 0)


def test_the_file_sets_the_same_names_with_dashes_or_underscores(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        'socket = "/tmp/f"\nmetrics-port = 9000\nmount_timeout = 7\nbackup-volfile-servers = ["x", "y"]\n'
        'unmount-mode = "lazy"\nclient-oom-score-adj = 1000\n',
    )
    s = parse_args(["--config", path])
    assert (s.socket, s.metrics_port, s.unmount_mode, s.client_oom_score_adj) == ("/tmp/f", 9000, "lazy", 1000)
    assert s.mount_timeout == 7.0 and isinstance(s.mount_timeout, float), "an integer is a float setting's value"
    assert s.backup_volfile_servers == ["x", "y"]
    assert s.fs_timeout == Settings().fs_timeout, "what the file leaves out keeps its default"


def test_a_flag_wins_over_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, 'socket = "/tmp/f"\nmount-timeout = 7.0\nbackup-volfile-servers = ["x"]\n')
    s = parse_args(["--config", path, "--socket", "/tmp/flag", "--backup-volfile-servers", "z"])
    assert s.socket == "/tmp/flag" and s.mount_timeout == 7.0 and s.backup_volfile_servers == ["z"]
    s = parse_args(["--socket", "/tmp/flag", "--config", path])
    assert s.socket == "/tmp/flag", "whatever the order on the command line"


def test_an_unknown_setting_in_the_file_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = toml(tmp_path, "mount-timeout = 3\nmount-timout = 3\n")
    err = refused(["--config", path], capsys)
    assert f"{path}: unknown setting 'mount-timout'" in err


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('metrics-port = "9000"', "metrics-port must be int, not '9000'"),
        ("metrics-port = true", "metrics-port must be int, not True"),
        ("metrics-port = 1.5", "metrics-port must be int"),
        ('mount-timeout = "3"', "mount-timeout must be float"),
        ("mount-timeout = false", "mount-timeout must be float"),
        ('backup-volfile-servers = "a"', "backup-volfile-servers must be a list of strings"),
        ("backup-volfile-servers = [1]", "backup-volfile-servers must be a list of strings"),
        ("socket = 1", "socket must be str"),
    ],
)
def test_a_value_of_the_wrong_type_in_the_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, says: str) -> None:
    assert says in refused(["--config", toml(tmp_path, line + "\n")], capsys)


@pytest.mark.parametrize(("line", "name"), [('unmount-mode = "forced"', "unmount-mode"), ('log-level = "verbose"', "log-level")])
def test_a_value_outside_the_choices_in_the_file_is_refused_like_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, name: str
) -> None:
    err = refused(["--config", toml(tmp_path, line + "\n")], capsys)
    assert name in err and line.split('"')[1] in err
    assert f"--{name}" in refused([f"--{name}", line.split('"')[1]], capsys)


def test_an_unreadable_or_broken_file_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "absent.toml")
    assert f"cannot read --config {missing}" in refused(["--config", missing], capsys)
    broken = toml(tmp_path, "socket = \n")
    assert f"cannot read --config {broken}" in refused(["--config", broken], capsys)


def test_a_flag_of_the_wrong_type_or_unknown_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--metrics-port: invalid int value: 'x'" in refused(["--metrics-port", "x"], capsys)
    assert "--mount-timeout: invalid float value" in refused(["--mount-timeout", "soon"], capsys)
    assert "unrecognized arguments: --nope" in refused(["--nope"], capsys)


@pytest.mark.parametrize("value", [-1001, 1001, 5000])
def test_the_oom_score_adj_must_be_within_the_kernels_range(value: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    says = f"client-oom-score-adj must be from -1000 to 1000, not {value}"
    assert says in refused([f"--client-oom-score-adj={value}"], capsys)
    assert says in refused(["--config", toml(tmp_path, f"client-oom-score-adj = {value}\n")], capsys)


@pytest.mark.parametrize("value", [-1000, 0, 1000])
def test_the_oom_score_adj_bounds_are_accepted(value: int) -> None:
    assert parse_args([f"--client-oom-score-adj={value}"]).client_oom_score_adj == value


def test_the_memory_warning_must_not_be_negative(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    says = "client-memory-warning-mib must be 0 (off) or more, not -1"
    assert says in refused(["--client-memory-warning-mib=-1"], capsys)
    assert says in refused(["--config", toml(tmp_path, "client-memory-warning-mib = -1\n")], capsys)
    assert parse_args(["--client-memory-warning-mib=0"]).client_memory_warning_mib == 0


@pytest.mark.parametrize(
    "argv, options",
    [
        ([], ()),
        (["--client-reader-threads=4"], ("--reader-thread-count=4",)),
        (["--client-event-threads=4"], ("--xlator-option=*-client-*.event-threads=4",)),
        (["--client-reader-threads=1", "--client-event-threads=0"], ()),
    ],
)
def test_client_options_reach_the_engine_and_the_defaults_add_none(argv: list[str], options: tuple[str, ...]) -> None:
    """The measured defaults are the client's and the volume's own: nothing passed; a setting passes its option."""
    assert engine_config(parse_args(argv)).client_options == options


@pytest.mark.parametrize(
    "flag, says",
    [
        ("--client-reader-threads=0", "client-reader-threads must be from 1 to 64, not 0"),
        ("--client-event-threads=33", "client-event-threads must be 0 (the volume's own) to 32, not 33"),
    ],
)
def test_client_thread_counts_are_bounded(flag: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert says in refused([flag], capsys)


def test_a_flag_can_bring_a_value_the_file_got_wrong_back_into_range(tmp_path: Path) -> None:
    path = toml(tmp_path, "client-oom-score-adj = 4000\n")
    assert parse_args(["--config", path, "--client-oom-score-adj", "-500"]).client_oom_score_adj == -500


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from glusterd_mgr import __version__

    with pytest.raises(SystemExit) as caught:
        parse_args(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out.strip() == __version__


def test_the_unmount_grace_must_not_be_negative_and_reaches_the_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    says = "unmount-grace must be 0 (unmount at once) or more seconds, not -1.0"
    assert says in refused(["--unmount-grace=-1"], capsys)
    assert says in refused(["--config", toml(tmp_path, "unmount-grace = -1\n")], capsys)
    settings = parse_args(["--unmount-grace=15", "--storage-dir", str(tmp_path)])
    assert engine_config(settings).unmount_grace == 15.0
