"""Normalisation: folding, abbreviations, invisible characters, tokens and language detection."""

import pytest

from retrieval.normalize import clean, detect_lang, fold, has_diacritics, tokens, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đăng ký khai sinh", "dang ky khai sinh"),
        ("ĐỔI THẺ CĂN CƯỚC", "doi the can cuoc"),
        ("Giấy xác nhận tình trạng hôn nhân", "giay xac nhan tinh trang hon nhan"),
        ("Quyết định", "quyet dinh"),
        ("already plain", "already plain"),
    ],
)
def test_fold_strips_diacritics_and_maps_d_stroke(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_fold_treats_decomposed_and_composed_input_alike() -> None:
    composed = "Hộ chiếu"
    decomposed = "Ho\u0323\u0302 chie\u0302\u0301u"  # same letters as combining marks (NFD-style keyboards)
    assert fold(decomposed) == fold(composed) == "ho chieu"


def test_clean_removes_invisible_and_bidi_characters_and_collapses_space() -> None:
    assert clean("căn\u200b cước\u202e  \n mới\ufeff") == "căn cước mới"


def test_abbreviations_expand_to_full_words() -> None:
    assert words("Làm lại CCCD") == ["lam", "lai", "can", "cuoc", "cong", "dan"]
    assert "giay_phep" in tokens("doi gplx")
    assert words("bhxh 1 lan") == ["bao", "hiem", "xa", "hoi", "1", "lan"]


def test_tokens_add_syllable_bigrams() -> None:
    assert tokens("khai sinh con") == ["khai", "sinh", "con", "khai_sinh", "sinh_con"]


def test_tokens_of_emoji_or_punctuation_only_are_empty() -> None:
    assert tokens("🙂🙂 ?!") == []


def test_has_diacritics() -> None:
    assert has_diacritics("đăng ký")
    assert not has_diacritics("dang ky")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Cho em hỏi thủ tục đăng ký tạm trú", "vi"),
        ("cho em hoi thu tuc dang ky tam tru o dau", "vi"),
        ("How can I renew my driving licence?", "en"),
        ("여권은 어떻게 발급받나요?", "ko"),
        ("Где получить паспорт?", "ru"),
        ("Gdzie mogę złożyć wniosek?", "pl"),
        ("jak zalozyc firme w wietnamie", "pl"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang
