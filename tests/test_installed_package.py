"""NovaWrite as a user installs it: a wheel built from the checkout, installed into a
fresh virtualenv, run from a directory that has nothing to do with the repository.

The wheel is built the documented way (``python -m build``: the sdist, then the
wheel from the unpacked sdist, so MANIFEST.in is tested too) from a copy of the
files a build reads, so the shared working tree gets no ``build/`` or egg-info.
The virtualenv is made without pip (``--without-pip``, 3 s saved) and this
venv's pip installs the wheel into it (``pip --python``) with its dependencies
resolved as a user's install resolves them; NovaWrite itself comes from the wheel.
``--no-compile`` leaves the bytecode to the first import (10 s saved: only what
runs gets compiled).

Runs once (no database fixture). ``pytest -m install`` selects these tests,
``-m "not install"`` leaves them out. Locally a failure to build or install (say,
no package index) skips; under CI=true it fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.server import free_port
from tests.waiting import until

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
#: What a build reads from the checkout (everything else, tests included, stays out of the package).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "alembic.ini", "alembic", "src")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info")


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def novawrite(self) -> Path:
        return self.venv / "bin" / "novawrite"


def _setup_failed(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(f"{message}\n(under CI=true this fails)")


def _setup_step(argv: list[str], what: str, cwd: Path, timeout: float) -> None:
    """Run a build or install step: its failure fails the test under CI and skips it otherwise."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        _setup_failed(f"{what}: no result within {timeout} s")
    if done.returncode != 0:
        _setup_failed(f"{what} failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, without bytecode."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def _members(wheel: zipfile.ZipFile, prefix: str) -> dict[str, bytes]:
    return {
        name.removeprefix(prefix): wheel.read(name)
        for name in wheel.namelist()
        if name.startswith(prefix) and not name.endswith("/")
    }


def _isolation() -> list[str]:
    """``--no-isolation`` when this venv can build the wheel itself: a setuptools that meets
    pyproject's [build-system] and has its own bdist_wheel (70.1). That saves making a build
    environment (about 10 s); otherwise build makes one, as a user's ``python -m build`` does."""
    try:
        found = Version(metadata.version("setuptools"))
    except metadata.PackageNotFoundError:
        return []
    with open(ROOT / "pyproject.toml", "rb") as file:
        requires = [Requirement(r) for r in tomllib.load(file)["build-system"]["requires"]]
    setuptools = [r for r in requires if r.name == "setuptools"]
    meets = all(found in r.specifier for r in setuptools) and found >= Version("70.1")
    return ["--no-isolation"] if meets and len(setuptools) == len(requires) else []


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """An sdist and a wheel, built with ``python -m build`` from a copy of the checkout's build inputs."""
    tree = tmp_path_factory.mktemp("checkout")
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=IGNORED)
        else:
            shutil.copy2(source, tree / name)
    dist = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", *_isolation(), "--outdir", str(dist), str(tree)]
    _setup_step(build, "python -m build", tree, 600)
    wheels, sdists = list(dist.glob("novawrite-*.whl")), list(dist.glob("novawrite-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    return Built(wheels[0], sdists[0])


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh virtualenv in a temporary directory with the wheel installed (and its dependencies)."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    _setup_step([sys.executable, "-m", "venv", "--without-pip", str(venv)], "python -m venv", venv.parent, 120)
    result = Installed(venv)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(result.python),
        "install",
        "--quiet",
        "--no-compile",
        str(built.wheel),
    ]
    _setup_step(pip, "pip install <wheel>", venv.parent, 900)
    return result


def test_the_wheel_ships_the_checkouts_migrations_templates_and_static_files(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        migrations = _members(wheel, "novawrite/migrations/")
        templates = _members(wheel, "novawrite/templates/")
        static = _members(wheel, "novawrite/static/")
    alembic = _files(ROOT / "alembic")
    assert {"env.py", "script.py.mako"} <= alembic.keys() and any(k.startswith("versions/") for k in alembic)
    # Every revision (and env.py, the template) exactly as in alembic/: setup.py copies all of it.
    assert sorted(migrations) == sorted(alembic), "the wheel's novawrite/migrations/ differs from alembic/"
    for name, content in alembic.items():
        assert migrations[name] == content, f"novawrite/migrations/{name} differs from alembic/{name}"
    assert templates == _files(ROOT / "src" / "novawrite" / "templates")
    assert static == _files(ROOT / "src" / "novawrite" / "static")
    # The sdist has the migrations' source, so a wheel built from it has them too (MANIFEST.in).
    with tarfile.open(built.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"setup.py", "alembic.ini", "alembic/env.py", "alembic/script.py.mako"} <= names
    assert {f"alembic/{name}" for name in alembic} <= names


def _clean_env(workdir: Path) -> dict[str, str]:
    """The environment of a user's shell: nothing that points back at the checkout or its venv."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "GEMINI_API_KEY", "GOOGLE_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVAWRITE_") and k not in drop}
    env.update(
        {
            "NOVAWRITE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'novawrite.db'}",
            "NOVAWRITE_DEMO_DELAY_MS": "0",
            "NOVAWRITE_ARGON2_TIME_COST": "1",
            "NOVAWRITE_ARGON2_MEMORY_KIB": "1024",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def test_the_installed_package_migrates_serves_the_ui_and_runs_a_generation(
    installed: Installed, tmp_path: Path
) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = _clean_env(workdir)

    show = "import novawrite, novawrite.db.migrate as m; print(novawrite.__file__); print(m.script_location())"
    shown = subprocess.run([str(installed.python), "-c", show], cwd=workdir, env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    where = shown.stdout.splitlines()
    venv = installed.venv.resolve()
    assert Path(where[0]).resolve().is_relative_to(venv), f"novawrite imported from {where[0]}, not the venv"
    assert Path(where[1]).resolve().is_relative_to(venv), f"migrations read from {where[1]}, not the package"

    upgrade = subprocess.run(
        [str(installed.novawrite), "db", "upgrade"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database at head" in upgrade.stdout
    assert (workdir / "novawrite.db").is_file()

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(installed.novawrite), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        static = _files(ROOT / "src" / "novawrite" / "static")
        asyncio.run(
            _use_the_service(f"http://127.0.0.1:{port}", server, static, lambda: log.read_text("utf-8", "replace"))
        )
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    # The secret was made beside the database, in the working directory: nothing went near the checkout.
    assert (workdir / "novawrite.db.secret").is_file()


async def _use_the_service(
    base: str, server: subprocess.Popen[bytes], static: dict[str, bytes], log: Callable[[], str]
) -> None:
    """Health, the UI and a static file, an account, a novel, an outline generation; then SIGTERM."""
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:

        async def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"server exited ({server.returncode}):\n{log()}")
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await until(healthy, 60, "the installed server answers /healthz")

        # The web UI: / sends a visitor without a session to the login page, rendered from the templates.
        home = await client.get("/")
        assert home.is_redirect and home.headers["location"].startswith("/login"), home
        login_page = await client.get("/login")
        assert login_page.status_code == 200 and login_page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:href|src)="/static/([^"?#]+)', login_page.text)
        assert "css/app.css" in assets, login_page.text[:2000]
        for asset in assets:
            r = await client.get(f"/static/{asset}")
            assert r.status_code == 200 and r.content == static[asset], asset

        # An account, a novel, and a generation the demo provider completes and applies.
        credentials = {"username": "installed", "password": "correct horse battery"}
        r = await client.post("/api/auth/register", json=credentials)
        assert r.status_code == 201, r.text
        r = await client.post("/api/auth/login", json=credentials)
        assert r.status_code == 200, r.text
        client.cookies.clear()
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        novel = {"title": "Starfall", "genre": "science fiction", "synopsis": "A courier.", "language": "en"}
        r = await client.post("/api/novels", json=novel)
        assert r.status_code == 201, r.text
        novel_id = r.json()["id"]
        outline = {"novel_id": novel_id, "volumes": 1, "chapters_per_volume": 3}
        r = await client.post("/api/ai/generate-outline", json=outline)
        assert r.status_code == 202, r.text
        task_id = r.json()["id"]
        task: dict[str, object] = {}

        async def finished() -> bool:
            r = await client.get(f"/api/tasks/{task_id}")
            assert r.status_code == 200, r.text
            task.update(r.json())
            return task["status"] in ("completed", "failed", "cancelled")

        await until(finished, 60, f"outline task {task_id} finishes")
        assert task["status"] == "completed", f"task {task['status']}: {task['error']}"
        r = await client.get(f"/api/novels/{novel_id}")
        assert r.status_code == 200, r.text
        assert [len(volume["chapters"]) for volume in r.json()["volumes"]] == [3]  # the outline was applied

    # SIGTERM: the server shuts down cleanly and exits. (uvicorn re-raises the signal once it has
    # shut down, so the exit status is "killed by SIGTERM"; the log says the shutdown ran.)
    server.send_signal(signal.SIGTERM)

    async def exited() -> bool:
        return server.poll() is not None

    await until(exited, 30, "the server exits after SIGTERM")
    assert server.returncode in (0, -signal.SIGTERM), f"exit {server.returncode} after SIGTERM:\n{log()}"
    assert "Application shutdown complete" in log(), log()
