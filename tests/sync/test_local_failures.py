"""Local failures an admin must fix (finding M4), the lock under probing (L6), special files (L7).

Each is an `Error:` with a `Hint:` and exit 2, never "internal error" (exit 4). The tests run
as root, where permissions do not bite: permission failures are injected where the OS call is
made, and wrong kinds of paths (a file where a folder is expected...) are real.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from credly_connector import localfiles
from credly_connector.errors import UsageError
from credly_connector.exit_codes import ExitCode
from credly_connector.localfiles import LocalFileError
from credly_connector.simulator.runner import Simulator
from credly_connector.sync.log import CrawlLog
from credly_connector.sync.state import (
    StateStoreError,
    SyncLock,
    SyncState,
    open_readonly,
    open_state,
    state_path,
)
from tests.sync.simhelpers import cli, configure, do_setup, settings_of


def _filled(path: Path, items: int = 3000) -> None:
    state = open_state(path, "contoso")
    crawl = state.begin_crawl("full")
    state.mark_intents((f"item{n:05d}", f"user{n:05d}", "put", f"u{n}@c.com") for n in range(items))
    state.record_results(crawl, [(f"item{n:05d}", "h" * 40) for n in range(items)], [], [])
    state.finish_crawl(crawl, "succeeded", {}, [])
    state.close()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)


def _corrupt_the_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = (len(data) // 2) // 4096 * 4096
    for n in range(middle, middle + 4096):
        data[n] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_database_corrupted_in_the_middle_is_refused_on_open(tmp_path: Path) -> None:
    path = tmp_path / "contoso.sqlite3"
    _filled(path)
    _corrupt_the_middle(path)
    for opener in (lambda: open_readonly(path), lambda: open_state(path, "contoso")):
        with pytest.raises(StateStoreError) as refused:
            opener()
        assert refused.value.exit_code == ExitCode.USAGE
        assert refused.value.error_id == "state_unreadable"
        assert "Move it aside" in refused.value.hint


def test_a_full_disk_while_recording_a_batch_is_a_user_error(tmp_path: Path) -> None:
    state = open_state(tmp_path / "contoso.sqlite3", "contoso")
    pages = state._rows("PRAGMA page_count")[0][0]
    state._conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite's own "disk full"
    with pytest.raises(StateStoreError) as full:
        state.mark_intents((f"i{n}", f"u{n}", "put", "x" * 200) for n in range(5000))
    assert full.value.error_id == "disk_full" and full.value.exit_code == ExitCode.USAGE
    assert "Free disk space" in full.value.hint


def test_a_read_only_database_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "contoso.sqlite3"
    open_state(path, "contoso").close()
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    state = SyncState(conn, path, locked=True)
    with pytest.raises(StateStoreError) as refused:
        state.begin_crawl("full")
    assert refused.value.error_id == "state_not_writable"
    assert "write access" in refused.value.hint


def test_a_state_folder_that_is_a_file_or_cannot_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    with pytest.raises(LocalFileError) as in_the_way:
        open_state(blocker / "contoso.sqlite3", "contoso")
    assert in_the_way.value.error_id == "path_in_the_way"

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(LocalFileError) as refused:
        open_state(tmp_path / "elsewhere" / "contoso.sqlite3", "contoso")
    assert refused.value.error_id == "permission_denied"
    assert refused.value.exit_code == ExitCode.USAGE


def test_a_lock_file_that_is_a_folder_or_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "contoso.lock"
    folder.mkdir()
    with pytest.raises(LocalFileError) as refused:
        SyncLock(folder).acquire("contoso")
    assert refused.value.error_id == "special_file"
    assert not SyncLock(folder).held_elsewhere()  # status does not crash on it either

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("filelock.FileLock.acquire", denied)
    with pytest.raises(LocalFileError) as not_writable:
        SyncLock(tmp_path / "other.lock").acquire("contoso")
    assert not_writable.value.error_id == "permission_denied"


def test_polling_status_never_makes_a_real_sync_fail(tmp_path: Path) -> None:
    """L6: the probe takes the lock for an instant; an acquiring sync waits instead of failing."""
    path = tmp_path / "contoso.lock"
    SyncLock(path).acquire("contoso")  # creates the file; released when the object goes
    stop = threading.Event()

    def monitor() -> None:
        probe = SyncLock(path)
        while not stop.is_set():
            probe.held_elsewhere()

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        for _ in range(300):
            lock = SyncLock(path)
            lock.acquire("contoso")
            lock.release()
    finally:
        stop.set()
        watcher.join()


@pytest.mark.parametrize("kind", ["empty", "folder"])
def test_log_file_paths_that_are_not_files(tmp_path: Path, kind: str) -> None:
    path = Path("") if kind == "empty" else tmp_path
    with pytest.raises(LocalFileError) as refused:
        CrawlLog(path)
    assert refused.value.exit_code == ExitCode.USAGE and "--log-file" in refused.value.message


def test_log_file_in_a_folder_that_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(LocalFileError) as refused:
        CrawlLog(tmp_path / "logs" / "sync.jsonl")
    assert refused.value.error_id == "permission_denied"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_log_file_on_a_full_device(tmp_path: Path) -> None:
    log = CrawlLog(Path("/dev/full"))
    with pytest.raises(LocalFileError) as full:
        log.event("crawl_start", instance="contoso")
    assert full.value.error_id == "disk_full"
    log.close()


# ---- support-bundle -o (L7 and M4) -----------------------------------------------------------


def _write(path: Path) -> None:
    from credly_connector.diagnostics.bundle import _write_zip

    _write_zip(path, {"status.json": {"ok": True}}, "")


def test_bundle_refuses_a_symlink_and_leaves_its_target_alone(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "bundle.zip"
    link.symlink_to(target)
    with pytest.raises(LocalFileError) as refused:
        _write(link)
    assert refused.value.error_id == "special_file" and "symbolic link" in refused.value.message
    assert link.is_symlink() and target.read_text() == "keep me"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_bundle_refuses_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "bundle.zip"
    os.mkfifo(fifo)
    with pytest.raises(LocalFileError, match="special file"):
        _write(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_bundle_refuses_a_symlinked_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "bundle.zip.partial").symlink_to(target)
    with pytest.raises(LocalFileError):
        _write(tmp_path / "bundle.zip")
    assert target.read_text() == "keep me"


def test_bundle_into_a_folder_that_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def denied(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(".partial"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(localfiles.os, "open", denied)
    with pytest.raises(LocalFileError) as refused:
        _write(tmp_path / "bundle.zip")
    assert refused.value.error_id == "permission_denied"
    assert refused.value.exit_code == ExitCode.USAGE


def test_bundle_replaces_an_old_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"old")
    _write(path)
    assert path.read_bytes().startswith(b"PK")
    assert not (tmp_path / "bundle.zip.partial").exists()


def test_every_local_failure_is_a_usage_error() -> None:
    assert issubclass(LocalFileError, UsageError) and issubclass(StateStoreError, LocalFileError)


@pytest.mark.integration
def test_commands_on_a_corrupted_database_say_so_and_write_nothing(
    fresh_sim: Simulator, tmp_path: Path
) -> None:
    config = configure(fresh_sim, tmp_path)
    do_setup(settings_of(config))
    assert cli(config, "sync").returncode == 0
    path = state_path(tmp_path / "state", "demo")
    _filled(path)  # enough pages that the middle one holds rows
    _corrupt_the_middle(path)
    fresh_sim.clear_request_log()
    for command in (("status",), ("sync", "--full"), ("sync", "--dry-run")):
        result = cli(config, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Error: The state database" in result.stderr
        assert "Hint: Move it aside" in result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    # diagnose reports it as the result of the last-crawl check, never as OK.
    diagnosed = cli(config, "diagnose", "--only", "sync.last_crawl")
    assert diagnosed.returncode != 0
    assert "The state database" in diagnosed.stdout and "Move it aside" in diagnosed.stdout
    assert not any(e.path.endswith("/$batch") for e in fresh_sim.request_log())


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs a device node")
def test_a_device_is_never_a_bundle_path() -> None:
    with pytest.raises(LocalFileError, match="special file"):
        localfiles.refuse_special_file(Path("/dev/null"), "support bundle path")
