"""`lint --jobs`: parsing, validating and the rules in several processes give what one process
gives."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshcanary import lint, rules, validating
from meshcanary.errors import InputError
from tests.support import ARTICLE, BOOKINFO, DATA, ROOT

OVERLAYS = sorted(p for p in (ROOT / "deploy" / "overlays").glob("*/*") if p.is_dir())

SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: shop
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: {target}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}-v1
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}, version: v1}}
  template:
    metadata:
      labels: {{app: {name}, version: v1}}
    spec:
      containers:
      - name: app
        image: registry.example/{name}:{tag}
        ports:
        - {{containerPort: 8080, name: http}}
"""


def _corpus(folder: Path, services: int) -> Path:
    """Files with findings (wrong targetPorts, mutable tags) between files that cannot be read."""
    folder.mkdir()
    for index in range(services):
        target = 9090 if index % 7 == 0 else 8080
        tag = "latest" if index % 11 == 0 else "1.0.0"
        text = SERVICE.format(name=f"app-{index:04d}", target=target, tag=tag)
        (folder / f"app-{index:04d}.yaml").write_text(text, encoding="utf-8")
    (folder / "app-0003-bad.yaml").write_text("kind: Service\nmetadata: {name: x\n")
    (folder / "app-0005-nbsp.yaml").write_text("kind: ConfigMap\nmetadata:\n\u00a0 name: x\n")
    (folder / "app-0008-latin1.yaml").write_bytes(b"kind: ConfigMap\nmetadata: {name: caf\xe9}\n")
    (folder / "app-0009-scalar.yaml").write_text("just text\n---\n- a list\n")
    (folder / "app-0010-list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: two}, data: {a: 1}}\n"
    )
    return folder


@pytest.fixture
def always_in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for any input, however small (the size they pay from is a tuning, not a rule),
    and the rules shared out between processes for any number of routes. The workers read
    every piece: this process would read them all before a worker starts."""
    monkeypatch.setattr(lint, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(lint, "PARSE_HERE", False)
    monkeypatch.setattr(rules, "PARALLEL_MIN_ROUTES", 0)


@pytest.mark.usefixtures("always_in_workers")
@pytest.mark.parametrize("output", ["text", "json"])
def test_two_jobs_report_what_one_does_on_the_rendered_overlays(cli, output: str) -> None:
    assert OVERLAYS, "the example repository's rendered overlays"
    alone = cli("lint", "-o", output, "--jobs", "1", *OVERLAYS)
    shared = cli("lint", "-o", output, "--jobs", "2", *OVERLAYS)
    assert alone.code in (0, 1)
    assert (shared.code, shared.out, shared.err) == (alone.code, alone.out, alone.err)


@pytest.mark.usefixtures("always_in_workers")
@pytest.mark.parametrize("output", ["text", "json"])
def test_two_jobs_report_what_one_does_with_bad_files_and_findings(
    cli, tmp_path: Path, output: str
) -> None:
    corpus = _corpus(tmp_path / "corpus", 60)
    inputs = [corpus, ARTICLE, BOOKINFO, DATA / "kubeconform" / "fixtures", "missing.yaml"]
    alone = cli("lint", "-o", output, "--jobs", "1", *inputs)
    shared = cli("lint", "-o", output, "--jobs", "3", *inputs)
    assert alone.code == 2  # unreadable files among the findings
    for rule in ("service-target-port", "mutable-image-tag", "input", "schema"):
        assert rule in alone.out + alone.err, rule
    assert (shared.code, shared.out, shared.err) == (alone.code, alone.out, alone.err)


@pytest.mark.usefixtures("always_in_workers")
def test_this_process_reads_pieces_beside_its_workers(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lint, "PARSE_HERE", True)
    corpus = _corpus(tmp_path / "corpus", 300)
    here: list[int] = []
    parsed_piece = lint._parsed_piece

    def counted(piece, validator):  # type: ignore[no-untyped-def]
        here.append(len(piece))
        return parsed_piece(piece, validator)

    monkeypatch.setattr(lint, "_parsed_piece", counted)
    alone = cli("lint", "-o", "json", "--jobs", "1", corpus)
    assert not here  # one process: no pieces
    shared = cli("lint", "-o", "json", "--jobs", "2", corpus)
    assert (shared.code, shared.out, shared.err) == (alone.code, alone.out, alone.err)
    assert here  # the first piece at least is claimed here, before the worker has started


def test_pieces_keep_the_order_and_cut_only_large_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meshcanary.inputs import read_documents

    read, _ = read_documents([str(_corpus(tmp_path / "corpus", 30))])
    assert lint._pieces(read.documents, 4) == [read.documents]  # too little text to pay
    assert lint._pieces(read.documents, 1) == [read.documents]
    monkeypatch.setattr(lint, "PARALLEL_MIN_BYTES", 0)
    pieces = lint._pieces(read.documents, 2)
    assert len(pieces) > 2
    assert [d for piece in pieces for d in piece] == read.documents


def test_large_input_is_read_by_one_worker_per_cpu_by_default(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path / "corpus", 30)
    monkeypatch.setattr(lint, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2})
    workers: list[int] = []
    in_workers = lint._in_workers

    def counted(read, pieces, validator, validation, jobs):  # type: ignore[no-untyped-def]
        workers.append(jobs)
        return in_workers(read, pieces, validator, validation, jobs)

    monkeypatch.setattr(lint, "_in_workers", counted)
    assert cli("lint", corpus).code == 2
    assert workers == [3]
    assert cli("lint", "--jobs", "1", corpus).code == 2
    assert workers == [3]  # one process: no workers


def test_jobs_count() -> None:
    assert validating.jobs_count("3") == 3
    assert validating.jobs_count("auto") >= 1
    for wrong in ("0", "-1", "two", ""):
        with pytest.raises(InputError, match="--jobs"):
            validating.jobs_count(wrong)


def test_a_bad_jobs_value_is_a_usage_error(cli) -> None:
    outcome = cli("lint", "--jobs", "many", ARTICLE / "micro-api.yaml")
    assert outcome.code == 2
    assert "--jobs 'many'" in outcome.err


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(child) for child in text.split()]
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="finds the workers in /proc")
def test_a_killed_worker_is_an_error_not_a_shorter_report(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus", 6000)  # 3.8 MB: the workers parse for a while
    process = subprocess.Popen(
        [sys.executable, "-m", "meshcanary", "lint", "--jobs", "2", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Every child is killed as it is found: the copy forked to validate small input (stopped
    # anyway once the input turns out large, so killing it changes nothing), then the workers.
    deadline = time.monotonic() + 60
    killed: set[int] = set()
    while process.poll() is None and time.monotonic() < deadline:
        for child in set(_children(process.pid)) - killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            killed.add(child)
        time.sleep(0.01)
    assert killed, f"lint finished before its workers could be found: {process.communicate()}"
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "worker process stopped before it finished" in err
    assert out == ""


def test_objects_made_without_cycle_collection_are_not_all_walked_after() -> None:
    import gc
    import weakref

    class Node:
        pass

    assert gc.isenabled()
    with rules.no_cycle_collection():
        kept = [[index] for index in range(200_000)]
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle
        assert not gc.isenabled()
    # The 200k lists kept are in the oldest generation: no collection is due for them.
    assert gc.isenabled()
    assert gc.get_count()[0] < gc.get_threshold()[0]
    assert gc.get_freeze_count() == 0
    assert gone() is not None
    gc.collect()  # a full collection still finds the cycle made in the block
    assert gone() is None
    assert len(kept) == 200_000


def test_a_freeze_made_elsewhere_is_left_alone() -> None:
    import gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with rules.no_cycle_collection():
            made = [[index] for index in range(1000)]
        assert gc.get_freeze_count() == frozen
        assert gc.isenabled() and made
    finally:
        gc.unfreeze()


@pytest.mark.skipif(sys.platform != "linux", reason="forks a process that holds the lock")
def test_a_count_held_by_a_process_that_stopped_is_an_error_not_a_wait_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiprocessing

    from meshcanary.errors import MeshcanaryError

    context = multiprocessing.get_context("fork")
    claimed = context.Value("i", 0)

    def hold_and_stop() -> None:
        claimed.get_lock().acquire()
        os._exit(0)  # never released: as a process killed while it held it

    holder = context.Process(target=hold_and_stop)
    holder.start()
    holder.join()
    monkeypatch.setattr(rules, "CLAIM_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(MeshcanaryError, match="stopped while it held"):
        rules.next_claim(claimed)
    free = context.Value("i", 5)
    assert (rules.next_claim(free), rules.next_claim(free), free.value) == (5, 6, 7)
