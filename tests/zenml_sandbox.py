"""A throwaway ZenML world for the tests, and the checks that it stayed throwaway.

ZenML writes to two places: the global store (``ZENML_CONFIG_PATH``) and the repository's
``.zen/config.yaml`` (the active stack and project, found from the working directory). Tests run
from the checkout, so without ``ZENML_REPOSITORY_PATH`` ZenML would write the throwaway store's
ids into the checkout's ``.zen/config.yaml`` and the user's next ``zenml status`` would reset
their stack. Imports nothing from zenml: the environment must be set before zenml is imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PREFIX = "prime-tests-zenml-"
ENV = "PRIME_TESTS_SANDBOX"  # set for subprocesses: they share the session's sandbox


@dataclass(frozen=True)
class Sandbox:
    """Everything the tests' ZenML and embedding cache write, under one removable directory."""

    root: Path
    owned: bool = True  # made by this process, so removed by it

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def repository(self) -> Path:
        return self.root / "repo"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"


def create_sandbox(source_root: Path) -> Sandbox:
    """A fresh sandbox, made the ZenML store, repository and embedding cache of this process
    and of the subprocesses it starts. Sources still resolve against ``source_root``."""
    inherited = os.environ.get(ENV)
    if inherited and Path(inherited).is_dir():
        # a subprocess of a test session (some are SIGKILLed: they could never clean up)
        return Sandbox(Path(inherited), owned=False)
    sandbox = Sandbox(Path(tempfile.mkdtemp(prefix=PREFIX)))
    (sandbox.repository / ".zen").mkdir(parents=True)  # a repository is a directory with .zen/
    sandbox.config.mkdir()
    sandbox.embeddings.mkdir()
    os.environ.update({ENV: str(sandbox.root)})
    os.environ.update(
        {
            "ZENML_CONFIG_PATH": str(sandbox.config),
            "ZENML_REPOSITORY_PATH": str(sandbox.repository),
            "ZENML_CUSTOM_SOURCE_ROOT": str(source_root),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_AUTO_OPEN_DASHBOARD": "false",
            "PRIME_CACHE_DIR": str(sandbox.embeddings),
        }
    )
    return sandbox


def remove_sandbox(sandbox: Sandbox) -> None:
    """Remove it all (~25 MB of store per session otherwise stays in /tmp), if it is ours."""
    if sandbox.owned:
        shutil.rmtree(sandbox.root, ignore_errors=True)


def digest_tree(directory: Path) -> str | None:
    """A hash of every file's relative path and content under ``directory``; None if absent."""
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def describe_change(directory: Path, before: str | None, after: str | None) -> str | None:
    """What happened to ``directory`` between two digests, or None if nothing did."""
    if before == after:
        return None
    if before is None:
        return f"the tests created {directory}"
    if after is None:
        return f"the tests removed {directory}"
    return f"the tests changed {directory}"
