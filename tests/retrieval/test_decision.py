"""The answer decision: each branch at, above and below its threshold, and the thresholds file."""

from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.decision import (
    ANSWERED,
    CLARIFY,
    DECLINED,
    ESCALATED,
    Signals,
    Thresholds,
    asks_for_person,
    decide_signals,
    load_thresholds,
    save_thresholds,
)

T = Thresholds(
    answer_dense=0.86,
    answer_margin=1.0,
    domain_dense=0.8,
    domain_known=0.5,
    off_topic_gap=0.0,
    clarify_gap=-0.03,
)


def sig(**kw: float | bool | int) -> Signals:
    base = {
        "wants_person": False,
        "has_words": True,
        "dense": 0.9,
        "margin": 2.0,
        "known": 1.0,
        "off_topic_gap": -0.1,
        "n_candidates": 10,
    }
    base.update(kw)
    return Signals(**base)  # type: ignore[arg-type]


def test_confident_and_clear_lead_is_answered() -> None:
    decision = decide_signals(sig(dense=0.86, margin=1.0), T)
    assert (decision.status, decision.offer) == (ANSWERED, 1)


def test_confident_without_lead_asks_which_one() -> None:
    decision = decide_signals(sig(dense=0.9, margin=0.99), T)
    assert (decision.status, decision.offer) == (CLARIFY, 3)


def test_just_below_answer_threshold_clarifies() -> None:
    assert decide_signals(sig(dense=0.859), T).status == CLARIFY


def test_closer_to_off_topic_than_allowed_for_options_escalates() -> None:
    assert decide_signals(sig(off_topic_gap=-0.029), T).status == ESCALATED
    assert decide_signals(sig(off_topic_gap=-0.03), T).status == ANSWERED


def test_closer_to_an_off_topic_example_is_declined() -> None:
    assert decide_signals(sig(off_topic_gap=0.001), T).status == DECLINED
    assert decide_signals(sig(off_topic_gap=0.0), T).status == ESCALATED


def test_far_and_unknown_words_is_declined() -> None:
    assert decide_signals(sig(dense=0.79, known=0.49), T).status == DECLINED
    assert decide_signals(sig(dense=0.79, known=0.5), T).status == CLARIFY
    assert decide_signals(sig(dense=0.8, known=0.0), T).status == CLARIFY


def test_no_words_is_declined_and_person_request_escalates() -> None:
    assert decide_signals(sig(has_words=False), T).status == DECLINED
    assert decide_signals(sig(wants_person=True), T).status == ESCALATED
    assert decide_signals(sig(wants_person=True, off_topic_gap=0.5), T).status == ESCALATED


def test_clarify_offers_no_more_candidates_than_exist() -> None:
    assert decide_signals(sig(margin=0.0, n_candidates=2), T).offer == 2


@pytest.mark.parametrize(
    "text",
    [
        "tôi muốn gặp cán bộ",
        "toi muon gap can bo",
        "I want to talk to an official",
        "Can I speak to a person please",
        "상담원 연결해 주세요",
        "Соедините с оператором",
    ],
)
def test_person_requests_are_recognised(text: str) -> None:
    assert asks_for_person(text)


@pytest.mark.parametrize("text", ["gặp gỡ bạn bè", "đăng ký kết hôn", "How do I get a passport?"])
def test_ordinary_questions_are_not_person_requests(text: str) -> None:
    assert not asks_for_person(text)


def test_thresholds_round_trip_per_embedder(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    save_thresholds("a", T, path)
    save_thresholds("b", Thresholds(answer_dense=0.5), path)
    assert load_thresholds("a", path) == T
    assert load_thresholds("b", path).answer_dense == 0.5
    assert load_thresholds("missing", path) == Thresholds()


def test_one_procedure_in_two_variants_is_asked_about_not_picked() -> None:
    from retrieval.decision import twin_titles

    assert twin_titles(
        "Cấp, cấp lại giấy phép nhập khẩu thủy sản sống (cấp tỉnh)", "Cấp, cấp lại giấy phép nhập khẩu thủy sản sống"
    )
    assert not twin_titles("Đăng ký khai sinh", "Đăng ký kết hôn")
    assert not twin_titles("", "Đăng ký kết hôn")
    assert twin_titles("Đăng ký khai tử (cấp xã)", "Đăng ký khai tử thực hiện tại cấp huyện")
    assert not twin_titles("Đăng ký thường trú", "Xóa đăng ký thường trú")  # another procedure, not a level
    issue, reissue = "Cấp giấy phép khai thác thủy sản ven bờ", "Cấp lại giấy phép khai thác thủy sản ven bờ"
    assert twin_titles(issue, reissue, imported=True)  # the national file's variants of one procedure
    assert not twin_titles(issue, reissue)


def test_a_case_the_question_names_and_no_title_names_is_reported() -> None:
    from retrieval.decision import unmatched_case

    assert unmatched_case("dang ky ket hon voi nguoi nuoc ngoai can gi", ["Đăng ký kết hôn"]) == "foreign"
    assert unmatched_case("marriage to a foreigner", ["Marriage registration"]) == "foreign"
    assert unmatched_case("kết hôn với người nước ngoài", ["Đăng ký kết hôn có yếu tố nước ngoài"]) is None
    assert unmatched_case("đăng ký kết hôn", ["Đăng ký kết hôn"]) is None


def test_twins_or_an_unnamed_case_turn_a_sure_answer_into_a_question() -> None:
    from retrieval.decision import Signals, Thresholds, decide_signals

    sure = Signals(False, True, 0.99, 10.0, 1.0, -1.0, 5)
    loose = Thresholds(answer_dense=0.5, answer_margin=0.1)
    assert decide_signals(sure, loose).status == "answered"
    assert decide_signals(replace(sure, twins=True), loose).status == "clarify"
    unnamed = decide_signals(replace(sure, case_of_first="foreign", case_of_all="foreign"), loose)
    assert (unnamed.status, unnamed.missing) == ("clarify", "foreign")
    among = decide_signals(replace(sure, case_of_first="foreign"), loose)
    assert (among.status, among.missing) == ("clarify", None)  # another candidate names it: offered, not reported
