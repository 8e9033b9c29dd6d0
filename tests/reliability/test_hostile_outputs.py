"""Hostile output paths and failing disks: PRIME replaces only what it wrote, two writers of one
path take turns, a full disk is a typed error with the old content intact, and the embedding
cache never serves vectors another encoder (or a broken shard) produced.

A full disk is real: a subprocess lowers ``RLIMIT_FSIZE``, so every write past the limit fails
with ``EFBIG`` inside FAISS, safetensors or pyarrow, exactly where a full disk would fail them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from safetensors.numpy import save_file

from prime_model import PredictorConfig, TrainingConfig
from prime_model.atomic import atomic_directory
from prime_model.cli.main import EXIT_ERROR, main
from prime_model.encode.cache import CachedEncoder
from prime_model.errors import ConfigError, ForeignContentError, WriteError
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.train.training import train_predictor
from tests.conftest import REPO_ROOT, CountingEncoder, make_encoded
from tests.prime_model.retrieve.support import unit_rows

Capture = pytest.CaptureFixture[str]


def _index(n: int = 30, kind: str = "exact") -> RetrievalIndex:
    return RetrievalIndex.build(
        [f"doc-{i}" for i in range(n)],
        [f"text {i}" for i in range(n)],
        unit_rows(n, 8),
        encoder_name="counting-stub",
        config=IndexConfig(kind=kind, m=8),
    )


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def _users_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    (folder / "data").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "data" / "model.bin").write_bytes(b"\x00weights")
    return folder


# ------------------------------------------------------- silent: an output over a user's files


def test_prime_index_over_a_folder_of_user_files_refuses_and_deletes_nothing(
    tmp_path: Path, capsys: Capture
) -> None:
    folder = _users_folder(tmp_path)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "alpha"}\n')
    before = _snapshot(tmp_path)
    assert main(["index", "--quiet", "--corpus", str(corpus), "--out", str(folder)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder} already holds 2 entries PRIME did not write there")
    assert "['data', 'notes.txt']" in err
    assert _snapshot(tmp_path) == before


def test_prime_index_over_a_regular_file_keeps_the_file_as_it_was(
    tmp_path: Path, capsys: Capture
) -> None:
    target = tmp_path / "out"
    target.write_text("a file of the user's\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "alpha"}\n')
    before = _snapshot(tmp_path)
    assert main(["index", "--quiet", "--corpus", str(corpus), "--out", str(target)]) == EXIT_ERROR
    assert "is a file, not a directory; refusing to replace it" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before  # no hidden .old copy, no directory


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_saving_an_index_over_user_files_is_refused_by_the_library_too(
    tmp_path: Path, kind: str
) -> None:
    folder = _users_folder(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ForeignContentError, match="PRIME did not write there"):
        _index(kind=kind).save(folder)
    assert _snapshot(tmp_path) == before


def test_a_foreign_file_that_appears_during_the_write_is_kept(tmp_path: Path) -> None:
    """The check is repeated at the swap, under the lock: what appeared meanwhile stays."""
    target = tmp_path / "out"
    with pytest.raises(ForeignContentError), atomic_directory(target) as staging:
        (staging / "a").write_text("new")
        target.mkdir()
        (target / "precious").write_text("user data")
    assert (target / "precious").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_index_replaces_an_earlier_index_of_either_kind(tmp_path: Path) -> None:
    target = _index(kind="exact").save(tmp_path / "index")
    _index(n=12, kind="hnsw").save(target)
    assert len(RetrievalIndex.load(target)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


TINY16 = PredictorConfig(
    input_dim=16, output_dim=16, hidden_dim=32, num_layers=1, num_heads=4,
    max_context_length=4, dropout=0.0, max_batch_size=8,
)  # fmt: skip
ONE_EPOCH = TrainingConfig(batch_size=16, max_epochs=1, accelerator="cpu", warmup_steps=1)


def test_training_into_a_regular_file_is_a_config_error_not_a_bare_oserror(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    out.write_text("not a folder\n")
    encoded = make_encoded(k=12, d=16)
    with pytest.raises(ConfigError, match="training output folder is a regular file"):
        train_predictor(encoded, encoded, TINY16, ONE_EPOCH, out)
    assert out.read_text() == "not a folder\n"


def test_a_fresh_run_never_clears_a_users_logs_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "diary.txt").write_text("mine\n")
    encoded = make_encoded(k=12, d=16)
    with pytest.raises(ForeignContentError, match=r"logs already holds 1 entry"):
        train_predictor(encoded, encoded, TINY16, ONE_EPOCH, out)
    assert (out / "logs" / "diary.txt").read_text() == "mine\n"


# -------------------------------------------------- crashes: two writers of the same directory

TWO_WRITERS = """
import sys
sys.path.insert(0, {root!r})
from tests.reliability.test_hostile_outputs import _index
index = _index(n=int(sys.argv[1]), kind="hnsw")
for _ in range(15):
    index.save({target!r})
print("saved")
"""


def test_two_processes_saving_one_index_take_turns(tmp_path: Path) -> None:
    target = tmp_path / "index"
    script = TWO_WRITERS.format(root=str(REPO_ROOT), target=str(target))
    writers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (20, 25)
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err[-2000:]
        assert out.strip() == "saved"
    assert len(RetrievalIndex.load(target)) in (20, 25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no staging, no lock left


def test_threads_writing_one_file_take_turns(tmp_path: Path) -> None:
    target = tmp_path / "shard.bin"
    errors: list[BaseException] = []

    def write(tag: bytes) -> None:
        from prime_model.atomic import atomic_file  # noqa: PLC0415

        try:
            for _ in range(30):
                with atomic_file(target) as staging:
                    staging.write_bytes(tag * 1000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in (b"a", b"b", b"c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert target.read_bytes() in (b"a" * 1000, b"b" * 1000, b"c" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["shard.bin"]


# ------------------------------------------------------------- crashes: a full disk everywhere

FULL_DISK = """
import json, logging, resource, signal, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from prime_model.errors import WriteError
from prime_model.encode.cache import CachedEncoder
from prime_model.retrieve.index import RetrievalIndex
from tests.conftest import CountingEncoder
from tests.reliability.test_hostile_outputs import _index
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
root = Path({tmp!r})
small = {{kind: _index(n=5, kind=kind).save(root / kind) for kind in ("exact", "hnsw")}}
big = {{kind: _index(n=4000, kind=kind) for kind in ("exact", "hnsw")}}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
result = {{}}
for kind, index in big.items():
    try:
        index.save(root / kind)
        result[kind] = "saved"
    except WriteError as exc:
        result[kind] = str(exc)
    except BaseException as exc:
        result[kind] = "UNTYPED " + type(exc).__name__ + ": " + str(exc)
    result[kind + "-still"] = len(RetrievalIndex.load(root / kind))
cache = CachedEncoder(CountingEncoder(dim=64), root / "cache", "stub")
try:
    vectors = cache.encode([f"text {{i}}" for i in range(400)])
    result["cache"] = list(vectors.shape)
except BaseException as exc:
    result["cache"] = "UNTYPED " + type(exc).__name__ + ": " + str(exc)
print(json.dumps(result))
"""


def test_a_full_disk_is_a_typed_error_and_the_old_content_stays(tmp_path: Path) -> None:
    script = FULL_DISK.format(root=str(REPO_ROOT), tmp=str(tmp_path))
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for kind in ("exact", "hnsw"):
        assert result[kind].startswith(f"cannot write {tmp_path / kind}"), result[kind]
        assert "is unchanged" in result[kind] and "File too large" in result[kind]
        assert result[f"{kind}-still"] == 5  # the old index, whole
    assert result["cache"] == [400, 64]  # the cache could not be written: it only cost time
    assert "embedding cache: could not write" in done.stderr
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert leftovers == [], leftovers


def test_write_errors_are_prime_errors_and_oserrors() -> None:
    assert issubclass(WriteError, OSError) and issubclass(ForeignContentError, WriteError)


# ---------------------------------------------------- silent and hang: the embedding cache


class _Fingerprinted(CountingEncoder):
    def __init__(self, fingerprint: str) -> None:
        super().__init__(dim=8)
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


def test_a_model_retrained_in_place_does_not_get_the_old_vectors(tmp_path: Path) -> None:
    """Same path, same identity string: only the weights' fingerprint tells them apart."""
    CachedEncoder(_Fingerprinted("weights-v1"), tmp_path, "/models/mine|max_seq_length=256").encode(
        ["a", "b"]
    )
    retrained = _Fingerprinted("weights-v2")
    CachedEncoder(retrained, tmp_path, "/models/mine|max_seq_length=256").encode(["a", "b"])
    assert retrained.calls == [["a", "b"]]
    same = _Fingerprinted("weights-v1")
    CachedEncoder(same, tmp_path, "/models/mine|max_seq_length=256").encode(["a", "b"])
    assert same.calls == []


def _bad_shard(folder: Path, vectors: npt.NDArray[np.float32], texts: list[str]) -> None:
    from prime_model.encode.cache import text_key  # noqa: PLC0415

    keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {"keys": keys.reshape(len(texts), 32).copy(), "vectors": vectors},
        str(folder / "bad.safetensors"),
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 3.0])
def test_a_shard_of_nan_or_non_unit_rows_is_skipped_not_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, value: float
) -> None:
    inner = CountingEncoder(dim=8)
    cache = CachedEncoder(inner, tmp_path, "stub")
    _bad_shard(cache.directory, np.full((2, 8), value, dtype=np.float32), ["a", "b"])
    with caplog.at_level(logging.WARNING):
        vectors = cache.encode(["a", "b"])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert inner.calls == [["a", "b"]]
    assert "NaN, infinite or non-unit vectors" in caplog.text


def test_a_fifo_named_like_a_shard_is_skipped_without_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inner = CountingEncoder(dim=8)
    cache = CachedEncoder(inner, tmp_path, "stub")
    cache.directory.mkdir(parents=True)
    os.mkfifo(cache.directory / "0000.safetensors")
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(cache.encode(["a"])), daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        thread.join(20)
    assert not thread.is_alive(), "the cache opened the FIFO and blocks"
    assert inner.calls == [["a"]]
    assert "is a named pipe (FIFO)" in caplog.text


def test_every_cache_folder_name_differs_by_fingerprint(tmp_path: Path) -> None:
    folders = {
        CachedEncoder(_Fingerprinted(f), tmp_path, "same").directory for f in ("w1", "w2", "w3")
    }
    assert len(folders) == 3
    assert all(p.parent == tmp_path for p in folders)


def test_a_file_system_without_flock_still_gets_its_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network and FUSE mounts refuse flock: the write goes ahead, as before round 3."""
    import errno  # noqa: PLC0415
    import fcntl  # noqa: PLC0415

    from prime_model.atomic import write_text_atomic  # noqa: PLC0415

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    write_text_atomic(tmp_path / "report.md", "# report\n")
    assert (tmp_path / "report.md").read_text() == "# report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
