"""Build hook: ship the migration scripts inside the package.

The scripts live in the top-level ``alembic/`` (so ``alembic upgrade head`` from a
checkout runs them); a built package gets a copy in ``novawrite/migrations/``,
which ``novawrite.db.migrate`` uses when it is there. Everything else about the
build is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ALEMBIC = Path(__file__).resolve().parent / "alembic"


def migration_files() -> list[Path]:
    """Every file of alembic/ (env.py, script.py.mako, versions/*.py...), relative to it, without bytecode."""
    return sorted(
        path.relative_to(ALEMBIC)
        for path in ALEMBIC.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )


class BuildPyWithMigrations(build_py):
    """build_py, then copy alembic/'s scripts to novawrite/migrations/ in the build directory."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads alembic/ in the checkout itself
        target = Path(self.build_lib) / "novawrite" / "migrations"
        shutil.rmtree(target, ignore_errors=True)  # an in-tree build/ may hold a revision since removed
        for relative in migration_files():
            self.mkpath(str((target / relative).parent))
            self.copy_file(str(ALEMBIC / relative), str(target / relative), preserve_mode=False)


setup(cmdclass={"build_py": BuildPyWithMigrations})
