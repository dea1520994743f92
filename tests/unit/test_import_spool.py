"""The import spool as a worker starts (web/imports.py): the folders of uploads whose worker
died are removed; another live worker's upload, and anything the worker did not make, stay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from streams.config import Settings
from web.imports import LOCK_FILE, UNLOCKED_GRACE_S, ImportJobs

ROOT = Path(__file__).resolve().parents[2]


def _jobs(spool: Path) -> ImportJobs:
    return ImportJobs(Settings(dev_mode=True, import_spool_dir=str(spool)))


def _upload_held_by_a_killed_worker(spool: Path) -> Path:
    """A folder made by another process (as a worker makes one), which is then SIGKILLed."""
    import_id = uuid.uuid4()
    code = ("import sys, uuid; from pathlib import Path; from streams.config import Settings; "
            "from web.imports import ImportJobs; "
            f"jobs = ImportJobs(Settings(dev_mode=True, import_spool_dir={str(spool)!r})); "
            f"(jobs.folder(uuid.UUID({str(import_id)!r})) / 'export.xml').write_bytes(b'<HealthData/>'); "
            "print('ready', flush=True); sys.stdin.read()")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    return spool / import_id.hex


def test_a_dead_workers_upload_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    dead = _upload_held_by_a_killed_worker(spool)
    live_jobs = _jobs(spool)
    live = live_jobs.folder(uuid.uuid4())
    (live / "export.xml").write_bytes(b"<HealthData/>")
    mine = spool / "notes"  # not a name the spool makes
    mine.mkdir()
    assert dead.is_dir()

    assert _jobs(spool).clear_stale() == 1
    assert sorted(p.name for p in spool.iterdir()) == sorted([live.name, "notes"])
    live_jobs.discard(uuid.UUID(live.name))
    assert sorted(p.name for p in spool.iterdir()) == ["notes"]


def test_a_folder_without_its_lock_is_stale_only_once_old(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    fresh, old = (spool / f".new-{uuid.uuid4().hex}"), spool / uuid.uuid4().hex
    for folder in (fresh, old):
        folder.mkdir(parents=True)
    then = time.time() - UNLOCKED_GRACE_S - 5
    os.utime(old, (then, then))
    assert _jobs(spool).clear_stale() == 1
    assert [p.name for p in spool.iterdir()] == [fresh.name]
    assert not (fresh / LOCK_FILE).exists()


def test_no_spool_yet_is_nothing_to_clear(tmp_path: Path) -> None:
    assert _jobs(tmp_path / "absent").clear_stale() == 0
