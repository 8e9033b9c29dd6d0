"""The PRIME image and the local Docker stack for real: every smoke step in its own container.

Opt-in, as it builds an image (minutes): runs only with ``PRIME_DOCKER_TESTS=1`` and a Docker
daemon that answers ``docker info``::

    PRIME_DOCKER_TESTS=1 .venv/bin/pytest tests/containers -p no:cacheprovider --no-cov

It builds infra/docker/Dockerfile as ``make image`` does (infra/docker/build.sh: Docker layer
caching makes a rebuild seconds; the Debian-packages base where no registry answers), registers
infra/stacks/local_docker.sh's stack in the session's throwaway ZenML store (tests/conftest.py;
never the user's), runs configs/smoke_docker.yaml through the ``zenml`` command with that store,
and reads the run and its artifacts from here. It asserts on the run's records (stack, build,
step statuses, who wrote each step's artifacts), never on ZenML's log lines, so it holds under any
``ZENML_LOGGING_VERBOSITY``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prime_model.artifacts import PREDICTOR_CHECKPOINT
from tests.conftest import REPO_ROOT

STACK = "prime-docker"
CONFIG = REPO_ROOT / "configs" / "smoke_docker.yaml"
IMAGE = yaml.safe_load(CONFIG.read_text())["settings"]["docker"]["parent_image"]
STEP_USER = yaml.safe_load(CONFIG.read_text())["settings"]["orchestrator.local_docker"]["run_args"][
    "user"
]
ZENML = str(Path(sys.executable).with_name("zenml"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEPS = (
    "load_turns",
    "validate_turns",
    "split_turns",
    "encode_turns",
    "train_predictor",
    "evaluate_predictor",
    "export_onnx",
    "benchmark_latency",
    "register_model",
    "model_card",
)


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - the docker CLI, asked whether its daemon is up
            [docker, "info"], capture_output=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


pytestmark = pytest.mark.skipif(
    not (os.environ.get("PRIME_DOCKER_TESTS") == "1" and _docker_answers()),
    reason="opt-in: PRIME_DOCKER_TESTS=1 and a Docker daemon (docker info)",
)


def _run(command: list[str], timeout: int, **env: str) -> str:
    """Run one of the project's own commands from the repository root; its output, or fail."""
    done = subprocess.run(  # noqa: S603 - the project's own scripts and zenml
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **env},  # the session's sandbox store (ZENML_CONFIG_PATH, ...)
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = ANSI.sub("", done.stdout + done.stderr)  # zenml colours its log lines even here
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


def _containers() -> set[str]:
    docker = shutil.which("docker") or "docker"
    done = subprocess.run(  # noqa: S603 - the docker CLI
        [docker, "ps", "--all", "--quiet", "--no-trunc", "--filter", f"ancestor={IMAGE}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


@pytest.fixture(scope="module")
def image() -> str:
    """The image configs/smoke_docker.yaml runs, built from this checkout."""
    _run([str(REPO_ROOT / "infra" / "docker" / "build.sh")], timeout=3600, IMAGE=IMAGE)
    return str(IMAGE)


@pytest.fixture(scope="module")
def stack() -> str:
    """The local Docker stack, registered in the sandbox store (and idempotently so)."""
    script = str(REPO_ROOT / "infra" / "stacks" / "local_docker.sh")
    from zenml.client import Client  # noqa: PLC0415 - after the sandbox is set
    from zenml.enums import StackComponentType  # noqa: PLC0415

    _run([script], timeout=300, ZENML=ZENML)
    first = Client().get_stack(STACK)
    _run([script], timeout=300, ZENML=ZENML)  # idempotent: the second run only describes it
    again = Client().get_stack(STACK)
    assert again.id == first.id
    orchestrator = again.components[StackComponentType.ORCHESTRATOR][0]
    assert orchestrator.flavor_name == "local_docker"
    return STACK


PROBE = """
import os, torch, zenml
from prime_model.encode.encoders import SentenceTransformerEncoder
vectors = SentenceTransformerEncoder().encode(["no network in here"])
offline = os.environ["HF_HUB_OFFLINE"]
print(os.getuid(), torch.__version__, zenml.__version__, offline, vectors.shape)
"""


def test_the_image_runs_as_a_non_root_user_with_the_cpu_torch_and_minilm_offline(
    image: str,
) -> None:
    docker = shutil.which("docker") or "docker"
    done = subprocess.run(  # noqa: S603 - the docker CLI on the image just built
        [docker, "run", "--rm", "--network", "none", image, "python", "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    import zenml  # noqa: PLC0415 - after the sandbox is set (tests/conftest.py)

    last = done.stdout.strip().splitlines()[-1]  # after the encoder's own log line
    uid, torch_version, zenml_version, offline, shape = last.split(maxsplit=4)
    assert uid != "0"  # the image's USER
    assert torch_version.endswith("+cpu")
    assert zenml_version == zenml.__version__  # the steps write this client's store schema
    assert offline == "1"
    assert shape.strip() == "(1, 384)"  # the bundled all-MiniLM-L6-v2, with no network at all


# zenml's own PipelineRunFilter reads one of its deprecated fields (Pipeline.last_run)
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_smoke_pipeline_runs_every_step_in_its_own_container(image: str, stack: str) -> None:
    from zenml.client import Client  # noqa: PLC0415 - after the sandbox is set
    from zenml.enums import ExecutionStatus  # noqa: PLC0415

    from prime_model.checkpoint import PredictorCheckpoint  # noqa: PLC0415

    before = _containers()
    _run(
        [ZENML, "pipeline", "run", "pipelines.training_pipeline", "-c", str(CONFIG), "-s", stack],
        timeout=3600,
    )
    assert _containers() == before  # run_args remove: no exited container per step left

    run = Client().get_pipeline("training_pipeline").last_run
    assert run.name.startswith("training-smoke-docker-")
    assert run.status == ExecutionStatus.COMPLETED
    assert run.stack is not None and run.stack.name == stack
    assert run.build is not None
    assert {item.image for item in run.build.images.values()} == {image}
    assert set(STEPS) <= set(run.steps)
    step_uid = int(STEP_USER.split(":")[0])
    for name, step in run.steps.items():
        # ran (a throwaway store: nothing cached), on the run's local_docker stack
        assert step.status == ExecutionStatus.COMPLETED, name
        # and in its container: its first output was written by the image's user, not by us
        outputs = [artifact for versions in step.outputs.values() for artifact in versions]
        assert outputs, name
        assert Path(outputs[0].uri).stat().st_uid == step_uid, name

    artifact = run.steps["train_predictor"].outputs[PREDICTOR_CHECKPOINT][0]
    checkpoint = artifact.load()
    assert isinstance(checkpoint, PredictorCheckpoint)
    evaluation = run.steps["evaluate_predictor"].outputs["evaluation"][0].load()
    assert evaluation is not None
    turns = run.steps["load_turns"].outputs["turns"][0].load()
    assert len(turns) > 0
