"""Shared fixtures: a tiny predictor config that keeps every test fast on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

from tests.zenml_sandbox import create_sandbox, describe_change, digest_tree, remove_sandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_ZEN = REPO_ROOT / ".zen"
# Before anything imports zenml: a throwaway store and repository, never the user's (nor the
# checkout's .zen/), removed when the session ends.
CHECKOUT_ZEN_BEFORE = digest_tree(CHECKOUT_ZEN)
SANDBOX = create_sandbox(REPO_ROOT)

import logging  # noqa: E402
from collections.abc import Iterator, Mapping, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402, N812

from prime_model import EmbeddingPredictor, PredictorConfig  # noqa: E402
from prime_model.encode.encoding import EncodedTurns  # noqa: E402

# Markers (registered in pyproject.toml), so `make test-fast` can leave out what takes minutes:
# by directory, `pipeline` (ZenML runs) and `docker` (containers); `slow` for the modules and
# tests that train, export to ONNX, compile, time backends, start servers or load the real
# Y-Encoder (MiniLM), found by reading them. Basenames, so a test file moved between packages
# keeps its mark; a new slow module is added here.
MARK_BY_DIRECTORY = {"pipelines": "pipeline", "containers": "docker"}
SLOW_MODULES = frozenset(
    {
        # training for real (Lightning Trainer, subprocesses, the smoke presets)
        "test_training.py", "test_progress.py", "test_ddp.py", "test_convergence.py",
        "test_workflow.py", "test_train_predictor.py", "test_system_faults.py",
        "test_real_data.py",
        # the real Y-Encoder, or its ONNX export
        "test_encoders.py", "test_onnx_encoder.py", "test_drift.py", "test_monitor_steps.py",
        "test_predict_embeddings.py", "test_demo.py",
        # ONNX export, int8 choice, torch.compile, timed benchmarks
        "test_export.py", "test_quantize.py", "test_serving_models.py", "test_optimized.py",
        "test_build.py", "test_loader.py",
        "test_roles_concat.py", "test_benchmark.py", "test_latency.py",
        # the CLI end to end (train, export, evaluate with MiniLM, index + serve)
        "test_main.py", "test_train.py", "test_inference.py", "test_predict.py", "test_serve.py",
        # servers: PostgreSQL (pgserver), the load test's HTTP server; the ANN measurements
        "test_pgvector.py", "test_load_test.py", "test_index_choice.py",
    }
)  # fmt: skip
# Fixtures that load MiniLM or run a pipeline, wherever a test asks for them.
SLOW_FIXTURES = frozenset({"minilm", "onnx_minilm", "production"})
SLOW_TESTS = frozenset(
    {
        "test_encode_turns_encodes_each_split",  # steps: the real Y-Encoder
        "test_the_onnx_encoder_refuses_a_lone_surrogate_with_a_typed_error",
        "test_an_index_built_with_max_seq_length_8_is_not_served_by_the_default_encoder",
        "test_serving_forward_and_onnx_export_keep_the_residual",
        "test_one_step_moves_the_residual_model_away_from_the_query",
        "test_training_into_a_regular_file_is_a_config_error_not_a_bare_oserror",
        "test_a_fresh_run_never_clears_a_users_logs_folder",
        # subprocesses (a second interpreter each) and real exports, measured at 9-45 s each
        "test_two_processes_saving_one_index_take_turns",
        "test_a_full_disk_is_a_typed_error_and_the_old_content_stays",
        "test_atomic_writes_honour_the_umask",
        "test_serving_encoder_falls_back_to_torch_when_onnx_export_fails",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every collected test `pipeline`, `docker` and/or `slow` (see the sets above)."""
    for item in items:
        path = item.path.relative_to(REPO_ROOT)
        parts = path.parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in MARK_BY_DIRECTORY:
            item.add_marker(MARK_BY_DIRECTORY[parts[1]])
        fixtures = set(getattr(item, "fixturenames", ()))
        if "production" in fixtures:
            item.add_marker("pipeline")
        name = getattr(item, "originalname", item.name)
        if path.name in SLOW_MODULES or name in SLOW_TESTS or fixtures & SLOW_FIXTURES:
            item.add_marker("slow")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if the checkout's .zen/ changed; then remove the sandbox."""
    change = describe_change(CHECKOUT_ZEN, CHECKOUT_ZEN_BEFORE, digest_tree(CHECKOUT_ZEN))
    remove_sandbox(SANDBOX)
    if change is not None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"ERROR: {change} (ZenML must write to {SANDBOX.root})", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


TINY_CONFIG = PredictorConfig(
    input_dim=16,
    output_dim=12,
    residual=False,
    hidden_dim=32,
    num_layers=2,
    num_heads=4,
    max_context_length=6,
    dropout=0.0,
    max_batch_size=8,
)


@pytest.fixture
def tiny_config() -> PredictorConfig:
    return TINY_CONFIG


@pytest.fixture
def tiny_model(tiny_config: PredictorConfig) -> EmbeddingPredictor:
    torch.manual_seed(0)
    return EmbeddingPredictor(tiny_config).eval()


def make_encoded(m: int = 48, n: int = 4, d: int = 16, k: int = 12, seed: int = 0) -> EncodedTurns:
    """Random EncodedTurns with consistent shapes and ids, for the training machinery."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, n + 1, (m, 1), generator=gen)
    mask = torch.arange(n)[None] < lengths  # (m, n)
    context = F.normalize(torch.randn(m, n, d, generator=gen), dim=-1) * mask[..., None]
    query = F.normalize(torch.randn(m, d, generator=gen), dim=-1)
    corpus = F.normalize(torch.randn(k, d, generator=gen), dim=-1)
    target_index = torch.randint(0, k, (m,), generator=gen)
    return EncodedTurns(
        context=context,
        context_mask=mask,
        query=query,
        target=corpus[target_index],
        target_index=target_index,
        corpus=corpus,
        conversation_ids=[f"c{i // 3}" for i in range(m)],
        turns=torch.arange(m) % 3,
        corpus_ids=[f"t{j}" for j in range(k)],
        encoder_name="stub",
        dim=d,
    )


class CountingEncoder:
    """Deterministic stub YEncoder that records every call.

    A text's vector comes from ``table`` when given (unknown texts: the last axis), else from a
    generator seeded by the text, so equal texts always get equal unit vectors.
    """

    def __init__(
        self,
        dim: int = 8,
        name: str = "counting-stub",
        table: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.calls: list[list[str]] = []
        self.name, self.dim, self._table = name, dim, table  # plain attributes fit YEncoder

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = [self._vector(t) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def _vector(self, text: str) -> Sequence[float]:
        if self._table is not None:
            return self._table.get(text, [0.0] * (self.dim - 1) + [1.0])
        row = np.random.default_rng(sum(map(ord, text)) + len(text)).normal(size=self.dim)
        return list(row / np.linalg.norm(row))


@pytest.fixture(autouse=True)
def _restore_package_log_level() -> Iterator[None]:
    """``prime`` commands set the ``prime_model`` logger's level (``--quiet``: WARNING), as a
    process entry point may; tests call them in-process, so put it back after each test."""
    package = logging.getLogger("prime_model")
    level = package.level
    yield
    package.setLevel(level)
