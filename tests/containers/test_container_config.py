"""The container settings agree with each other: fast, no Docker needed (always run)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from zenml.config import DockerSettings
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.orchestrators.local_docker.local_docker_orchestrator import (
    LocalDockerOrchestratorSettings,
)

from pipelines.run_config import load_run_config
from tests.conftest import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
DOCKER = REPO_ROOT / "infra" / "docker"
# as a run reads them: smoke_docker.yaml is an overlay over smoke.yaml (base:)
SMOKE = load_run_config(CONFIGS / "smoke.yaml")
SMOKE_DOCKER = load_run_config(CONFIGS / "smoke_docker.yaml")
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
SCRIPTS = [
    DOCKER / "build.sh",
    DOCKER / "build-base.sh",
    REPO_ROOT / "infra" / "stacks" / "local_docker.sh",
]


def test_smoke_docker_is_the_smoke_config_in_containers() -> None:
    """Only the run name and the settings differ, so a change to smoke.yaml must reach it."""
    assert {k: v for k, v in SMOKE_DOCKER.items() if k not in ("settings", "run_name")} == {
        k: v for k, v in SMOKE.items() if k != "run_name"
    }
    assert set(SMOKE_DOCKER["settings"]) == {"docker", "orchestrator.local_docker"}
    PipelineRunConfiguration.model_validate(SMOKE_DOCKER)


def test_smoke_docker_runs_the_prebuilt_image_as_its_non_root_user() -> None:
    docker = DockerSettings.model_validate(SMOKE_DOCKER["settings"]["docker"])
    assert docker.skip_build  # nothing built or pip-installed on top of the image
    build_script = (DOCKER / "build.sh").read_text()
    assert f'IMAGE="${{IMAGE:-{docker.parent_image}}}"' in build_script  # what `make image` tags
    settings = LocalDockerOrchestratorSettings.model_validate(
        SMOKE_DOCKER["settings"]["orchestrator.local_docker"]
    )
    uid, gid = settings.run_args["user"].split(":")
    assert uid != "0"
    assert re.search(rf"useradd .*--uid {uid} --user-group", DOCKERFILE)
    stack_script = (REPO_ROOT / "infra" / "stacks" / "local_docker.sh").read_text()
    assert f'CONTAINER_UID="${{CONTAINER_UID:-{uid}}}"' in stack_script
    assert gid == uid  # --user-group: the group has the user's id (the first user in the image)
    assert settings.run_args["remove"] is True


def test_the_image_installs_run_time_dependencies_only() -> None:
    """Offline MiniLM, the CPU torch and the non-root user are checked on the built image
    (test_docker_image.py); here only what a build would not reveal: no dev extra."""
    assert "[dev]" not in DOCKERFILE


def test_k8s_builds_the_same_dockerfile_with_its_client_as_a_build_arg() -> None:
    k8s = yaml.safe_load((CONFIGS / "training_k8s.yaml").read_text())
    docker = DockerSettings.model_validate(k8s["settings"]["docker"])
    assert docker.dockerfile is not None
    assert (REPO_ROOT / docker.dockerfile) == DOCKER / "Dockerfile"
    assert docker.parent_image_build_config is not None
    options = docker.parent_image_build_config.build_options
    assert options is not None and options.build_args is not None
    assert set(options.build_args) <= set(re.findall(r"^ARG (\w+)", DOCKERFILE, re.MULTILINE))
    assert options.build_args["EXTRA_REQUIREMENTS"].startswith("kubernetes")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: Path(p).name)
def test_container_scripts_parse(script: Path) -> None:
    for checker in ("bash", "shellcheck"):
        tool = shutil.which(checker)
        if tool is None:
            continue
        args = [tool, "-n", str(script)] if checker == "bash" else [tool, str(script)]
        done = subprocess.run(  # noqa: S603 - bash/shellcheck on our own scripts
            args, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
