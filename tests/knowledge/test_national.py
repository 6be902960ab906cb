"""Parsing records of the national procedures database: flattened tables, placeholders, bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge.national import BUNDLED_NATIONAL_FILE as NATIONAL_FILE
from knowledge.national import iter_national_file, parse_national_record

MODES_HEADER = "Hình thức nộpThời gianPhí, lệ phíMô tả"
DOCS_HEADER = "Tên giấy tờMẫu đơn, tờ khaiSố lượng"
LEGAL_HEADER = "Tên văn bản pháp lýMã văn bản"


def raw_record(**fields: str) -> dict:
    """A portal record with every field present, overridden by fields."""
    record = {
        "ma_thu_tuc": " 1.001193 ",
        "ten_thu_tuc": "Thủ tục  đăng ký\nkhai sinh",
        "cap_thuc_hien": "Cấp xã",
        "linh_vuc": "Hộ tịch",
        "doi_tuong_thuc_hien": "Công dân Việt Nam",
        "co_quan_co_tham_quyen": "",
        "co_quan_thuc_hien": "Ủy ban nhân dân cấp xã",
        "dia_chi_tiep_nhan": "",
        "trinh_tu_thuc_hien": "",
        "cach_thuc_thuc_hien": "",
        "thanh_phan_ho_so": "",
        "yeu_cau_dieu_kien": "Không có thông tin",
        "can_cu_phap_ly": "Không có thông tin",
        "ket_qua_xu_ly": "",
        "detail_url": "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/abc",
        "bo_nganh": "bo-tu-phap",
    }
    record.update(fields)
    return record


def parse(**fields: str) -> dict:
    return parse_national_record(raw_record(**fields))


# --- ways of filing --------------------------------------------------------------


def test_fee_less_mode_keeps_time_and_description() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER
        + "Trực tiếp7 Ngày làm việcKhông có thông tinNộp tại Bộ phận Một cửa của Ủy ban nhân dân cấp xã."
    )
    assert parsed["filing_modes"] == [
        {
            "mode": "Trực tiếp",
            "time": "7 Ngày làm việc",
            "fee": "",
            "description": "Nộp tại Bộ phận Một cửa của Ủy ban nhân dân cấp xã.",
        }
    ]
    assert parsed["fees"] == "Không quy định"
    assert parsed["processing_time"] == "7 ngày làm việc"


def test_two_modes_with_different_times_and_fees_are_listed_per_mode() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER
        + "Trực tiếp7 Ngày làm việc10,000 Việt Nam Đồng(Lệ phí cấp bản sao trích lục)Nộp hồ sơ tại "
        "Bộ phận Một cửaTrực tuyến5 Ngày làm việc5,000 VNĐNộp qua Cổng Dịch vụ công quốc gia"
    )
    assert [(m["mode"], m["time"], m["fee"]) for m in parsed["filing_modes"]] == [
        ("Trực tiếp", "7 Ngày làm việc", "10.000 đồng (Lệ phí cấp bản sao trích lục)"),
        ("Trực tuyến", "5 Ngày làm việc", "5.000 đồng"),
    ]
    assert parsed["filing_modes"][0]["description"] == "Nộp hồ sơ tại Bộ phận Một cửa"
    assert parsed["fees"] == "Trực tiếp: 10.000 đồng (Lệ phí cấp bản sao trích lục); Trực tuyến: 5.000 đồng"
    assert parsed["processing_time"] == "Trực tiếp: 7 ngày làm việc; Trực tuyến: 5 ngày làm việc"


def test_modes_that_agree_collapse_to_one_value() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER
        + "Trực tuyến30 NgàyMiễn phí(Không có)Dịch vụ bưu chính30 NgàyMiễn phí(Không có)"
        "Trực tiếp30 NgàyMiễn phí(Không có)"
    )
    assert [m["mode"] for m in parsed["filing_modes"]] == ["Trực tuyến", "Dịch vụ bưu chính", "Trực tiếp"]
    # "(Không có)" is an empty note, not part of the fee.
    assert parsed["fees"] == "Miễn phí"
    assert parsed["processing_time"] == "30 ngày"


def test_free_label_keeps_its_note_because_the_note_can_contradict_it() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER
        + "Trực tiếp5 Ngày làm việcMiễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân cấp tỉnh quyết định.)"
    )
    assert parsed["fees"] == "Miễn phí (Mức lệ phí cụ thể do Hội đồng nhân dân cấp tỉnh quyết định.)"


def test_unit_less_time_glued_to_an_amount_is_split_and_flagged() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER + "Trực tuyến120 VNĐ(20.000 vnđ /tờ khai)Trực tiếp1Miễn phí"
    )
    assert [(m["time"], m["fee"]) for m in parsed["filing_modes"]] == [
        ("1", "20 đồng (20.000 vnđ /tờ khai)"),
        ("1", "Miễn phí"),
    ]
    assert parsed["processing_time"] == "1 (không rõ đơn vị)"


def test_description_numbering_after_an_empty_fee_is_not_a_fee_note() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER
        + "Trực tiếp14 Ngày làm việcKhông có thông tin(1) Trường hợp thay đổi tên tổ chức: nộp hồ sơ."
    )
    mode = parsed["filing_modes"][0]
    assert mode["fee"] == ""
    assert mode["description"] == "(1) Trường hợp thay đổi tên tổ chức: nộp hồ sơ."


def test_mode_names_inside_descriptions_and_free_text_times() -> None:
    parsed = parse(
        cach_thuc_thuc_hien=MODES_HEADER
        + "Trực tuyếnKhông phải trả kết quả cho người nộp thuếMiễn phíQua Cổng dịch vụ công; "
        "Trực tiếp tại cơ quan thuế khi có yêu cầuDịch vụ bưu chính2 GiờMiễn phí"
    )
    assert [(m["mode"], m["time"]) for m in parsed["filing_modes"]] == [
        ("Trực tuyến", "Không phải trả kết quả cho người nộp thuế"),
        ("Dịch vụ bưu chính", "2 Giờ"),
    ]
    assert parsed["filing_modes"][0]["description"] == (
        "Qua Cổng dịch vụ công; Trực tiếp tại cơ quan thuế khi có yêu cầu"
    )
    assert parsed["processing_time"] == (
        "Trực tuyến: Không phải trả kết quả cho người nộp thuế; Dịch vụ bưu chính: 2 giờ"
    )


def test_unrecognised_filing_text_is_kept_as_a_description() -> None:
    parsed = parse(cach_thuc_thuc_hien=MODES_HEADER + "Nộp hồ sơ theo hướng dẫn của cơ quan thuế")
    assert parsed["filing_modes"] == [
        {"mode": "", "time": "", "fee": "", "description": "Nộp hồ sơ theo hướng dẫn của cơ quan thuế"}
    ]
    assert parsed["processing_time"] == ""
    assert parsed["fees"] == "Không quy định"


# --- documents -----------------------------------------------------------------------


def test_documents_drop_counts_and_form_file_names() -> None:
    parsed = parse(
        thanh_phan_ho_so="--"
        + DOCS_HEADER
        + "- Đơn đề nghị cấp giấy phép theo Mẫu số 01 ban hành kèm theo Nghị định số 15/2018/NĐ-CP;"
        "Mẫu số 01.docx1 bản chính"
        "Bản sao Giấy chứng nhận đăng ký doanh nghiệp0 bản chính,1 bản sao"
        "Giấy đề nghị đăng ký hoạt động theo mẫu do Bộ Tư pháp ban hànhMẫu TP-HGTM-04.docx1 bản chính"
        "Đơn xin nhận con nuôi;1.nxinnhnconnui.doc1 bản chính"
        "Báo cáo tình hình hoạt động của chi nhánhPhụ lục I - TT54.docxPhụ lục II -TT54.docx1 bản chính"
        "Văn bản ủy quyền (01 bản chính hoặc 01 bản sao có chứng thực)0 bản chính,1 bản sao"
    )
    assert parsed["documents"] == [
        "Đơn đề nghị cấp giấy phép theo Mẫu số 01 ban hành kèm theo Nghị định số 15/2018/NĐ-CP",
        "Bản sao Giấy chứng nhận đăng ký doanh nghiệp",
        "Giấy đề nghị đăng ký hoạt động theo mẫu do Bộ Tư pháp ban hành",
        "Đơn xin nhận con nuôi",
        "Báo cáo tình hình hoạt động của chi nhánh",
        # A count written in prose belongs to the name, unlike the glued count cell.
        "Văn bản ủy quyền (01 bản chính hoặc 01 bản sao có chứng thực)",
    ]


def test_documents_from_several_tables_drop_headings_and_duplicates() -> None:
    parsed = parse(
        thanh_phan_ho_so="* Giấy tờ phải nộp:" + DOCS_HEADER + "Tờ khai đăng ký khai sinh theo mẫu1 bản chính"
        "Giấy chứng sinh do cơ sở y tế cấp ngày 15/5/20261 bản chính"
        "* Giấy tờ phải xuất trình:" + DOCS_HEADER + "+ Hộ chiếu hoặc Thẻ căn cước0 bản chính"
        "Tờ khai đăng ký khai sinh theo mẫu.1 bản chính"
        "Giấy tờ chứng minh nơi cư trú: 01 bản sao0 bản chính,1 bản sao"
    )
    assert parsed["documents"] == [
        "Tờ khai đăng ký khai sinh theo mẫu",
        # The year of the date and the glued count cell "1 bản chính" are told apart.
        "Giấy chứng sinh do cơ sở y tế cấp ngày 15/5/2026",
        "Hộ chiếu hoặc Thẻ căn cước",
        "Giấy tờ chứng minh nơi cư trú",
    ]


def test_documents_without_a_table_are_empty() -> None:
    assert parse(thanh_phan_ho_so="")["documents"] == []
    assert parse(thanh_phan_ho_so="--")["documents"] == []
    assert parse(thanh_phan_ho_so="Bước 2. Cơ quan BHXH tiếp nhận hồ sơ.")["documents"] == []


# --- legal basis -----------------------------------------------------------------------


def test_legal_basis_table_gives_title_and_number_once() -> None:
    parsed = parse(
        can_cu_phap_ly=LEGAL_HEADER + "Luật Hộ tịch60/2014/QH13"
        "Nghị định 123/2015/NĐ-CP123/2015/NĐ-CP"
        "Thông tư số 04/2020/TT-BTP ngày 28/5/2020 của Bộ trưởng Bộ Tư pháp quy định chi tiết04/2020/TT-BTP"
        "quy định mức thu phí khai thác cơ sở dữ liệu hộ tịchThông tư số 281/2016/TT-BTC"
        "Luật Đất đai năm 202431/2024/QH15"
        "Về bảo hiểm hưu trí bổ sung88/2016/NĐ-CP"
        "Luật Hộ tịch60/2014/QH13"
    )
    assert parsed["legal_basis"] == [
        "Luật Hộ tịch 60/2014/QH13",
        "Nghị định 123/2015/NĐ-CP",
        "Thông tư số 04/2020/TT-BTP ngày 28/5/2020 của Bộ trưởng Bộ Tư pháp quy định chi tiết",
        "Thông tư số 281/2016/TT-BTC quy định mức thu phí khai thác cơ sở dữ liệu hộ tịch",
        "Luật Đất đai năm 2024 31/2024/QH15",
        "Về bảo hiểm hưu trí bổ sung 88/2016/NĐ-CP",
    ]


def test_legal_numbers_quoted_inside_titles_do_not_split_rows() -> None:
    parsed = parse(
        can_cu_phap_ly=LEGAL_HEADER
        + "Nghị định số 91/2022/NĐ-CP sửa đổi, bổ sung Nghị định số 126/2020/NĐ-CP, Luật Quản lý thuế"
        "91/2022/NĐ-CPQuyết định công bố thủ tục2338/QĐ-BTP"
    )
    assert parsed["legal_basis"] == [
        "Nghị định số 91/2022/NĐ-CP sửa đổi, bổ sung Nghị định số 126/2020/NĐ-CP, Luật Quản lý thuế",
        "Quyết định công bố thủ tục 2338/QĐ-BTP",
    ]


def test_legal_basis_placeholders_and_unparseable_text() -> None:
    assert parse(can_cu_phap_ly="Không có thông tin")["legal_basis"] == []
    assert parse(can_cu_phap_ly="")["legal_basis"] == []
    assert parse(can_cu_phap_ly=LEGAL_HEADER + "Luật Hóa chất  ")["legal_basis"] == ["Luật Hóa chất"]


# --- steps ---------------------------------------------------------------------------


def test_steps_split_at_buoc_markers_and_keep_sub_points() -> None:
    parsed = parse(
        trinh_tu_thuc_hien="Bước 1: Nộp hồ sơ tại Bộ phận Một cửa.\n\n"
        "Bước 2: Tiếp nhận hồ sơ:\n- Nếu hồ sơ đầy đủ thì viết giấy tiếp nhận;\n"
        "- Nếu chưa đầy đủ thì hướng dẫn bổ sung theo Bước 1 nêu trên.\n"
        "a) Bước 3. Trả kết quả cho người\nnộp hồ sơ.Bước 4 Lưu hồ sơ."
    )
    assert parsed["steps"] == [
        "Bước 1: Nộp hồ sơ tại Bộ phận Một cửa.",
        "Bước 2: Tiếp nhận hồ sơ:\n- Nếu hồ sơ đầy đủ thì viết giấy tiếp nhận;\n"
        "- Nếu chưa đầy đủ thì hướng dẫn bổ sung theo Bước 1 nêu trên.",
        # Hard-wrapped lines are joined again.
        "Bước 3. Trả kết quả cho người nộp hồ sơ.",
        "Bước 4 Lưu hồ sơ.",
    ]


def test_steps_without_markers_split_at_dashes_and_numbered_lines() -> None:
    parsed = parse(
        trinh_tu_thuc_hien="- Tổ chức nộp hồ sơ trực tuyến.\n\n+ Cơ quan kiểm tra hồ sơ.\n"
        "   \n1. Trả kết quả.\n-\n"
    )
    assert parsed["steps"] == ["Tổ chức nộp hồ sơ trực tuyến.", "Cơ quan kiểm tra hồ sơ.", "1. Trả kết quả."]


# --- placeholders and plain fields ----------------------------------------------------------


def test_placeholders_become_empty_and_authority_falls_back() -> None:
    parsed = parse(
        yeu_cau_dieu_kien="Không",
        co_quan_thuc_hien="Không có thông tin",
        co_quan_co_tham_quyen="Bộ Tư pháp",
        ket_qua_xu_ly="",
        bo_nganh="",
    )
    assert parsed["conditions"] == ""
    assert parsed["authority"] == "Bộ Tư pháp"
    assert parsed["where_to_file"] == "Bộ Tư pháp"
    assert parsed["ministry"] is None
    assert parsed["result"] == ""
    assert (parsed["steps"], parsed["documents"], parsed["legal_basis"], parsed["filing_modes"]) == (
        [],
        [],
        [],
        [],
    )
    assert parsed["fees"] == "Không quy định"
    assert parsed["processing_time"] == ""


def test_plain_fields_are_trimmed_and_address_wins_over_authority() -> None:
    parsed = parse(
        dia_chi_tiep_nhan=" 119 Nguyễn Sơn,\nHà Nội ", yeu_cau_dieu_kien="  Có năng lực hành vi dân sự.\n\n"
    )
    assert parsed["code"] == "1.001193"
    assert parsed["title"] == "Thủ tục đăng ký khai sinh"
    assert (parsed["category"], parsed["level"], parsed["who"]) == ("Hộ tịch", "Cấp xã", "Công dân Việt Nam")
    assert parsed["ministry"] == "bo-tu-phap"
    assert parsed["authority"] == "Ủy ban nhân dân cấp xã"
    assert parsed["where_to_file"] == "119 Nguyễn Sơn, Hà Nội"
    assert parsed["conditions"] == "Có năng lực hành vi dân sự."
    assert parsed["url"] == "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/abc"


def test_no_authority_at_all_gives_empty_strings() -> None:
    parsed = parse(co_quan_thuc_hien="Không có thông tin", co_quan_co_tham_quyen="")
    assert parsed["authority"] == ""
    assert parsed["where_to_file"] == ""


def test_result_drops_codes_and_page_chrome() -> None:
    chrome = (
        "Từ khóaKhông có thông tinMô tảKhông có thông tinChọn cơ quan thực hiệnTỉnh/ Thành phốBộ ngành"
        "-- Chọn Tỉnh/ Thành phố --Nộp hồ sơ"
    )
    parsed = parse(
        ket_qua_xu_ly="Giấy xác nhận tạm ngừng kinh doanhMã: KQ.G12.001013"
        "Giấy xác nhận tiếp tục kinh doanhMã: KQ.G12.001340" + chrome,
        yeu_cau_dieu_kien="Không có thông tin" + chrome,
    )
    assert parsed["result"] == "Giấy xác nhận tạm ngừng kinh doanh; Giấy xác nhận tiếp tục kinh doanh"
    assert parsed["conditions"] == ""


def test_missing_and_non_string_fields_do_not_raise() -> None:
    parsed = parse_national_record({"ma_thu_tuc": "1.000001", "ten_thu_tuc": "X", "linh_vuc": None})
    assert parsed["code"] == "1.000001"
    assert parsed["category"] == ""
    assert parsed["documents"] == []
    assert parsed["url"] == ""


# --- reading the file -------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_iter_national_file_yields_line_numbers(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "ok.jsonl",
        [json.dumps(raw_record(ma_thu_tuc="1.000001")), "", json.dumps(raw_record(ma_thu_tuc="1.000002"))],
    )
    assert [(line, raw["ma_thu_tuc"]) for line, raw in iter_national_file(path)] == [
        (1, "1.000001"),
        (3, "1.000002"),
    ]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"ma_thu_tuc": "1.000002", ', "invalid JSON"),
        (json.dumps({"ten_thu_tuc": "Không mã"}), "record is missing 'ma_thu_tuc'"),
        (json.dumps({"ma_thu_tuc": "  ", "ten_thu_tuc": "Mã rỗng"}), "record is missing 'ma_thu_tuc'"),
        (json.dumps({"ma_thu_tuc": "1.000002"}), "record is missing 'ten_thu_tuc'"),
        (json.dumps(["1.000002"]), "expected a JSON object, got list"),
    ],
)
def test_iter_national_file_names_the_bad_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(raw_record()), bad_line])
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: {message}")):
        list(iter_national_file(path))


# --- the real file ------------------------------------------------------------------------


def test_every_real_record_parses_into_sane_fields() -> None:
    parsed = [parse_national_record(raw) for _, raw in iter_national_file(NATIONAL_FILE)]
    total = len(parsed)
    assert total > 2000

    def share(predicate) -> float:
        return sum(1 for record in parsed if predicate(record)) / total

    assert all(re.fullmatch(r"\d\.\d{6}", record["code"]) and record["title"] for record in parsed)
    assert len({record["code"] for record in parsed}) == total
    # Measured on the 2,642-record file: 98.0 % / 95.2 % / 86.6 % / 97.1 % / 100 % / 99.4 %.
    assert share(lambda r: r["documents"]) >= 0.95
    assert share(lambda r: r["processing_time"]) >= 0.93
    assert share(lambda r: r["fees"] != "Không quy định") >= 0.83
    assert share(lambda r: r["legal_basis"]) >= 0.95
    assert share(lambda r: r["steps"]) >= 0.99
    assert share(lambda r: r["result"]) >= 0.97
    assert all(record["filing_modes"] for record in parsed)

    documents = [doc for record in parsed for doc in record["documents"]]
    assert all(doc and doc == doc.strip() for doc in documents)
    assert not [doc for doc in documents if "Bản chính:" in doc or "Tên giấy tờ" in doc]
    assert not [doc for doc in documents if re.search(r"\.(docx?|pdf)$", doc, re.IGNORECASE)]
    assert not [doc for doc in documents if re.search(r"\d bản (chính|sao)$", doc)]
    for record in parsed:
        assert len(record["documents"]) == len({doc.casefold() for doc in record["documents"]})
        assert len(record["legal_basis"]) == len(set(record["legal_basis"]))
        assert all(entry.strip() for entry in record["legal_basis"])
        assert all(step.strip() for step in record["steps"])
        assert {mode["mode"] for mode in record["filing_modes"]} <= {
            "Trực tiếp",
            "Trực tuyến",
            "Dịch vụ bưu chính",
        }
        assert "Chọn cơ quan thực hiện" not in record["result"]
        assert "Không có thông tin" not in record["processing_time"]
        assert record["where_to_file"] or not record["authority"]
