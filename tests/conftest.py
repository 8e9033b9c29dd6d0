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
        self._dim, self._name, self._table = dim, name, table

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = [self._vector(t) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dim)

    def _vector(self, text: str) -> Sequence[float]:
        if self._table is not None:
            return self._table.get(text, [0.0] * (self._dim - 1) + [1.0])
        row = np.random.default_rng(sum(map(ord, text)) + len(text)).normal(size=self._dim)
        return list(row / np.linalg.norm(row))


@pytest.fixture(autouse=True)
def _restore_package_log_level() -> Iterator[None]:
    """``prime`` commands set the ``prime_model`` logger's level (``--quiet``: WARNING), as a
    process entry point may; tests call them in-process, so put it back after each test."""
    package = logging.getLogger("prime_model")
    level = package.level
    yield
    package.setLevel(level)
