"""Scale-out and scheduling files: they parse, agree with each other, and do what they say."""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from zenml.config import DockerSettings
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings
from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings
from zenml.utils.settings_utils import is_valid_setting_key

from pipelines.run_config import load_run_config
from pipelines.schedule import check_cron, load_schedule
from prime_model import PredictorConfig, TrainingConfig
from prime_model.train.strategy import lightning_strategy, process_count
from tests.conftest import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
INFRA = REPO_ROOT / "infra"
# as a run reads them: training_k8s.yaml is an overlay over training.yaml (base:)
K8S = load_run_config(CONFIGS / "training_k8s.yaml")
TRAINING = load_run_config(CONFIGS / "training.yaml")
SCALE_OUT = {"accelerator": "cpu", "devices": 2, "num_nodes": 1, "strategy": "ddp_spawn"}
NIGHTLY = "0 3 * * *"


# --- configs/training_k8s.yaml ---------------------------------------------------------------


def test_k8s_parameters_parse_with_the_project_configs() -> None:
    params = K8S["parameters"]
    predictor = PredictorConfig(**params["predictor"])
    training = TrainingConfig(**params["training"])
    assert predictor.input_dim == 384
    assert (training.strategy, training.devices, training.num_nodes) == ("ddp_spawn", 2, 1)
    assert process_count(training) == 2
    assert lightning_strategy(training, inside_pipeline=True) == "ddp_spawn"


def test_k8s_config_is_the_training_config_scaled_out() -> None:
    """Only the scale-out fields differ, so a change to training.yaml must reach this copy."""
    assert K8S["model"] == TRAINING["model"]
    k8s_params, params = dict(K8S["parameters"]), dict(TRAINING["parameters"])
    assert k8s_params.pop("training") == {**params.pop("training"), **SCALE_OUT}
    assert k8s_params == params


def test_k8s_config_is_a_valid_zenml_run_config() -> None:
    run_config = PipelineRunConfiguration.model_validate(K8S)
    assert run_config.settings is not None and run_config.steps is not None
    assert set(run_config.settings) == {"docker", "orchestrator.kubernetes"}
    assert all(is_valid_setting_key(key) for key in K8S["settings"])
    assert set(run_config.steps) == {"train_predictor"}
    assert all(is_valid_setting_key(key) for key in K8S["steps"]["train_predictor"]["settings"])


def test_k8s_docker_settings_build_the_projects_dockerfile() -> None:
    docker = DockerSettings.model_validate(K8S["settings"]["docker"])
    assert docker.dockerfile is not None
    assert (REPO_ROOT / docker.dockerfile) == INFRA / "docker" / "Dockerfile"
    assert docker.build_context_root == "."
    # the image runs as a non-root user: ZenML must not need to pip-install a layer on top
    assert not docker.requirements
    assert not docker.install_stack_requirements
    assert docker.disable_automatic_requirements_detection
    assert not docker.required_integrations and not docker.apt_packages


def _kubernetes_settings() -> list[dict[str, Any]]:
    return [
        K8S["settings"]["orchestrator.kubernetes"],
        K8S["steps"]["train_predictor"]["settings"]["orchestrator.kubernetes"],
    ]


def test_k8s_orchestrator_settings_use_known_keys() -> None:
    """ZenML's own validation of pod settings needs the kubernetes client; the keys do not."""
    for settings in _kubernetes_settings():
        assert set(settings) <= set(KubernetesOrchestratorSettings.model_fields)
        for pods in ("pod_settings", "orchestrator_pod_settings"):
            assert set(settings.get(pods, {})) <= set(KubernetesPodSettings.model_fields)
    train = _kubernetes_settings()[1]["pod_settings"]
    assert train["node_selectors"]["kubernetes.io/os"] == "linux"
    assert train["resources"]["requests"]["cpu"] == "4"
    mounts = {m["mountPath"] for m in train["volume_mounts"]}
    assert mounts == {"/dev/shm"}  # noqa: S108 - the pod's shared memory for DDP, not a temp file


def test_k8s_orchestrator_settings_validate_with_the_kubernetes_client() -> None:
    pytest.importorskip("kubernetes", reason="the kubernetes integration is not installed")
    for settings in _kubernetes_settings():
        validated = KubernetesOrchestratorSettings.model_validate(settings)
        assert validated.pod_settings is not None and validated.pod_settings.node_selectors


# --- infra/docker ---------------------------------------------------------------------------


DOCKERFILE = (INFRA / "docker" / "Dockerfile").read_text()


def _instructions() -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_dockerfile_installs_the_makefiles_torch_then_the_project_as_non_root() -> None:
    lines = _instructions()
    makefile_torch = re.search(r"^TORCH \?= (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert makefile_torch is not None
    assert f"ARG TORCH={makefile_torch.group(1)}" in lines  # the image runs what CI tested
    torch = next(i for i, line in enumerate(lines) if '--index-url "${TORCH_INDEX_URL}"' in line)
    deps = next(i for i, line in enumerate(lines) if "pip install -r /tmp/requirements.txt" in line)
    project = next(i for i, line in enumerate(lines) if "pip install --no-deps -e ." in line)
    assert torch < deps < project  # torch first, so "torch>=2.4" resolves to the CPU wheel
    assert "COPY pyproject.toml ./" in lines[torch:deps]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("RUN useradd") and users[-1] in line for line in lines)


def test_dockerfile_reads_the_dependencies_from_pyproject() -> None:
    """The RUN step's one-liner, run here: it must list the project's dependencies."""
    line = next(line for line in _instructions() if "tomllib" in line)
    code = re.search(r'python -c "(.+?)"\s*>', line)
    assert code is not None
    out = subprocess.run(  # noqa: S603 - our own Dockerfile's command
        [shutil.which("python") or "python", "-c", code.group(1)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "torch>=2.4" in out
    assert any(req.startswith("zenml") for req in out)
    assert any(req.startswith("lightning") for req in out)


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, f"{p}/*") or path.startswith(f"{p}/")
        for p in (p.removeprefix("**/") for p in patterns)
    )


def test_dockerignore_keeps_the_code_and_drops_the_local_state() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    kept_paths = [
        "pyproject.toml",
        "README.md",
        "prime_model/model.py",
        "pipelines/training.py",
        "steps/__init__.py",
        "configs/training.yaml",
        "infra/docker/Dockerfile",
    ]
    for kept in kept_paths:
        assert not _ignored(kept, patterns), kept
    for dropped in (".venv/bin/python", ".git/HEAD", ".zen/config.yaml", "outputs/run/x.pt",
                    "prime_model/__pycache__/model.cpython-311.pyc"):  # fmt: skip
        assert _ignored(dropped, patterns), dropped


# --- infra/stacks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "flavor"), [("kubernetes", "kubernetes"), ("kubeflow", "kubeflow")]
)
def test_stack_recipes_register_a_full_stack(recipe: str, flavor: str) -> None:
    text = (INFRA / "stacks" / f"{recipe}.sh").read_text()
    assert f'zenml orchestrator register "${{STACK}}-orchestrator" --flavor={flavor}' in text
    for component in ("artifact-store", "container-registry", "image-builder"):
        assert f"zenml {component} register" in text
    assert re.search(r"zenml stack register .*-o .*-a .*\n?.*-c .*-i .*--set", text)
    assert "zenml login" in text  # remote components need a ZenML server


def _bash(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    return subprocess.run(  # noqa: S603 - our own recipe
        [bash, str(script)],
        env={"PATH": "/nonexistent", **env},  # no zenml: it must stop before calling it
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("recipe", ["kubernetes", "kubeflow"])
def test_stack_recipes_stop_with_the_missing_setting(recipe: str) -> None:
    script = INFRA / "stacks" / f"{recipe}.sh"
    done = _bash(script, {})
    assert done.returncode != 0
    assert "REGISTRY_URI" in done.stderr or "KUBE_CONTEXT" in done.stderr
    bad = {"KUBE_CONTEXT": "c", "REGISTRY_URI": "r", "ARTIFACT_URI": "ftp://x"}
    done = _bash(script, bad)
    assert done.returncode == 2
    assert "ARTIFACT_URI must start with s3://, gs:// or az://" in done.stderr


# --- infra/local ----------------------------------------------------------------------------


CRONTAB = INFRA / "local" / "crontab"


def _cron_line() -> str:
    lines = [line for line in CRONTAB.read_text().splitlines() if line and line[0] != "#"]
    assert len(lines) == 1
    return lines[0]


def test_crontab_runs_the_retraining_pipeline_nightly() -> None:
    line = _cron_line()
    check_cron(" ".join(line.split()[:5]))
    assert " ".join(line.split()[:5]) == NIGHTLY
    assert "cd @REPO@ &&" in line
    assert ".venv/bin/zenml pipeline run pipelines.retraining_pipeline" in line
    assert "-c configs/retraining.yaml" in line
    assert "%" not in line  # cron would turn it into a newline


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string((INFRA / "local" / name).read_text())
    return parser


def test_systemd_units_run_the_retraining_pipeline_nightly() -> None:
    service, timer = _unit("prime-retraining.service"), _unit("prime-retraining.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["WorkingDirectory"] == "@REPO@"
    assert service["Service"]["ExecStart"] == (
        "@REPO@/.venv/bin/zenml pipeline run pipelines.retraining_pipeline "
        "-c configs/retraining.yaml"
    )
    assert timer["Timer"]["OnCalendar"] == "*-*-* 03:00:00"  # = the crontab's 0 3 * * *
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "prime-retraining.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_every_schedule_says_03_00() -> None:
    assert load_schedule(CONFIGS / "retraining_schedule.yaml").cron_expression == NIGHTLY
    assert " ".join(_cron_line().split()[:5]) == NIGHTLY


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here")
    repo = tmp_path / "repo"
    zenml = repo / ".venv" / "bin" / "zenml"
    zenml.parent.mkdir(parents=True)
    zenml.write_text("#!/bin/sh\n")
    zenml.chmod(0o755)
    units = []
    for name in ("prime-retraining.service", "prime-retraining.timer"):
        unit = tmp_path / name
        unit.write_text((INFRA / "local" / name).read_text().replace("@REPO@", str(repo)))
        units.append(str(unit))
    done = subprocess.run(  # noqa: S603 - systemd's own checker on our units
        [analyze, "verify", *units], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# --- make schedule-local ----------------------------------------------------------------------

FAKE_CRONTAB = """#!/bin/sh
echo "$*" >> "$CRONTAB_CALLS"
case "$1" in
  -l) if [ -f "$CRONTAB_FILE" ]; then cat "$CRONTAB_FILE"; else echo "no crontab" >&2; exit 1; fi ;;
  -) cat > "$CRONTAB_FILE" ;;
esac
"""


@pytest.fixture
def fake_crontab(tmp_path: Path) -> dict[str, Path]:
    """A `crontab` first on PATH that records its calls and keeps the table in a file."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "crontab").write_text(FAKE_CRONTAB)
    (bin_dir / "crontab").chmod(0o755)
    return {"bin": bin_dir, "calls": tmp_path / "calls", "table": tmp_path / "table"}


def _make(fake: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{fake['bin']}{os.pathsep}{os.environ['PATH']}",
        "CRONTAB_CALLS": str(fake["calls"]),
        "CRONTAB_FILE": str(fake["table"]),
    }
    return subprocess.run(  # noqa: S603 - the project's own Makefile
        [shutil.which("make") or "make", "-s", "-C", str(REPO_ROOT), "schedule-local", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_schedule_local_only_prints_without_confirm(fake_crontab: dict[str, Path]) -> None:
    done = _make(fake_crontab)
    expected = _cron_line().replace("@REPO@", str(REPO_ROOT))
    assert done.stdout.splitlines()[0] == expected
    assert "CONFIRM=yes" in done.stderr
    assert not fake_crontab["calls"].exists()  # crontab never called


def test_schedule_local_confirm_installs_once_and_keeps_other_entries(
    fake_crontab: dict[str, Path],
) -> None:
    fake_crontab["table"].write_text("15 * * * * echo other job\n")
    expected = _cron_line().replace("@REPO@", str(REPO_ROOT))
    first = _make(fake_crontab, "CONFIRM=yes")
    assert "added to your crontab" in first.stdout
    second = _make(fake_crontab, "CONFIRM=yes")
    assert "already in your crontab" in second.stdout
    assert fake_crontab["table"].read_text().splitlines() == [
        "15 * * * * echo other job",
        expected,
    ]
    assert fake_crontab["calls"].read_text().split("\n")[:3] == ["-l", "-", "-l"]


def test_schedule_local_into_an_empty_crontab(fake_crontab: dict[str, Path]) -> None:
    _make(fake_crontab, "CONFIRM=yes")
    expected = _cron_line().replace("@REPO@", str(REPO_ROOT))
    assert fake_crontab["table"].read_text() == expected + "\n"


def test_infra_readme_covers_scale_out_and_scheduling() -> None:
    text = (INFRA / "README.md").read_text()
    for needle in ("docker build -f infra/docker/Dockerfile .", "configs/training_k8s.yaml",
                   "ddp_spawn", "infra/stacks/kubernetes.sh", "infra/stacks/kubeflow.sh",
                   "configs/retraining_schedule.yaml", "make schedule-local"):  # fmt: skip
        assert needle in text, needle
    local = (INFRA / "local" / "README.md").read_text()
    assert "make schedule-local CONFIRM=yes" in local
    assert "systemctl --user enable --now prime-retraining.timer" in local
