"""What the bot says, in Vietnamese and English (other languages get English)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "greeting": {
        "vi": "Xin chào! Tôi là trợ lý Một cửa. Hãy hỏi tôi về thủ tục hành chính: cần giấy tờ gì, lệ phí, "
        "thời gian, nộp ở đâu. Bấm một câu hỏi mẫu hay một lĩnh vực bên dưới, hoặc gõ /help để xem hướng dẫn.",
        "en": "Hello! I am the One-Stop assistant. Ask me about administrative procedures: documents, fees, "
        "processing time, where to file. Tap an example question or a topic below, or type /help for more.",
    },
    "help": {
        "vi": 'Cách dùng:\n• Gõ câu hỏi, ví dụ: "làm lại căn cước bị mất"\n• /topics — xem thủ tục theo lĩnh vực\n'
        '• /ticket — các yêu cầu đã chuyển cán bộ\n• /lang vi|en — đổi ngôn ngữ\n• Nút "Gặp cán bộ" — chuyển câu hỏi '
        "cho cán bộ trả lời",
        "en": 'How to use:\n• Type a question, e.g. "replace a lost ID card"\n• /topics — browse procedures\n'
        "• /ticket — your questions handed to officials\n• /lang vi|en — change language\n"
        '• "Talk to an official" button — hand your question to an official',
    },
    "clarify": {
        "vi": "Bạn hỏi về thủ tục nào dưới đây?",
        "en": "Which of these procedures do you mean?",
    },
    "clarify_missing": {
        "vi": "Tôi chưa có thủ tục dành riêng cho trường hợp {case}. Các thủ tục gần nhất là:",
        "en": "I have no procedure for exactly that case ({case}). The closest ones are:",
    },
    "case_foreign": {"vi": "có yếu tố nước ngoài", "en": "involving a foreign country or a foreigner"},
    "declined": {
        "vi": "Xin lỗi, tôi chỉ trả lời câu hỏi về thủ tục hành chính. Nếu cần, bạn có thể gặp cán bộ.",
        "en": "Sorry, I can only answer questions about administrative procedures. You can ask an official if "
        "you need to.",
    },
    "escalated": {
        "vi": "Tôi đã chuyển câu hỏi của bạn cho cán bộ. Mã yêu cầu: {code}. Cán bộ sẽ trả lời trước {deadline}.",
        "en": "I have passed your question to an official. Ticket {code}. An official will answer by {deadline}.",
    },
    "ticket_open": {
        "vi": "Câu hỏi của bạn đang được cán bộ xử lý (mã {code}). Tin nhắn này đã được chuyển cho cán bộ.",
        "en": "An official is handling your question (ticket {code}). This message has been passed on.",
    },
    "no_tickets": {"vi": "Bạn chưa có yêu cầu nào.", "en": "You have no tickets."},
    "tickets": {"vi": "Yêu cầu của bạn:", "en": "Your tickets:"},
    "topics": {"vi": "Chọn lĩnh vực:", "en": "Choose a topic:"},
    "topic": {"vi": "Thủ tục trong lĩnh vực này:", "en": "Procedures in this topic:"},
    "lang_set": {"vi": "Đã chuyển sang tiếng Việt.", "en": "Language set to English."},
    "empty": {
        "vi": "Bạn hãy gõ câu hỏi về thủ tục hành chính nhé.",
        "en": "Please type a question about an administrative procedure.",
    },
    "too_long": {
        "vi": "Câu hỏi dài quá ({n} ký tự). Bạn hãy tóm tắt trong khoảng {max} ký tự nhé.",
        "en": "Your message is too long ({n} characters). Please shorten it to about {max} characters.",
    },
    "unsupported": {
        "vi": "Hiện tôi chỉ đọc được tin nhắn chữ. Bạn hãy gõ câu hỏi nhé.",
        "en": "I can only read text messages for now. Please type your question.",
    },
    "thanks_up": {"vi": "Cảm ơn bạn đã đánh giá!", "en": "Thank you for your feedback!"},
    "thanks_down": {
        "vi": "Xin lỗi vì câu trả lời chưa tốt. Bạn có muốn gặp cán bộ không?",
        "en": "Sorry the answer did not help. Would you like to ask an official?",
    },
    "button_person": {"vi": "👤 Gặp cán bộ", "en": "👤 Talk to an official"},
    # Every button says in words what it does: an emoji a phone cannot draw leaves the words.
    "button_up": {"vi": "👍 Hữu ích", "en": "👍 Helpful"},
    "button_reopen": {"vi": "↩️ Chưa rõ, hỏi lại", "en": "↩️ Not solved, reopen"},
    "rated": {
        "vi": "Cảm ơn bạn đã chấm điểm câu trả lời của cán bộ!",
        "en": "Thank you for rating the official's answer!",
    },
    "reopened": {
        "vi": "Đã mở lại yêu cầu {code}. Cán bộ sẽ trả lời trước {deadline}.",
        "en": "Ticket {code} is open again. An official will answer by {deadline}.",
    },
    "button_down": {"vi": "👎 Chưa hữu ích", "en": "👎 Not helpful"},
    "button_full": {"vi": "📋 Xem đầy đủ", "en": "📋 Full card"},
    "button_short": {"vi": "📄 Tóm tắt thủ tục", "en": "📄 Short card"},
    "button_steps": {"vi": "📝 Các bước thực hiện", "en": "📝 Steps"},
    "button_legal_basis": {"vi": "⚖️ Căn cứ pháp lý", "en": "⚖️ Legal basis"},
    "button_topics": {"vi": "🗂️ Tất cả lĩnh vực", "en": "🗂️ All topics"},
    "part_missing": {
        "vi": "Tôi chưa có thông tin “{label}” của thủ tục này. Bạn xem tóm tắt thủ tục, hoặc gặp cán bộ để được "
        "hướng dẫn.",
        "en": "I have no “{label}” for this procedure yet. See the short card, or ask an official.",
    },
    "more_items": {"vi": "… và {n} mục khác", "en": "… and {n} more"},
    "expired": {
        "vi": "Nút này không còn hiệu lực. Bạn hãy gõ lại câu hỏi nhé.",
        "en": "This button is no longer valid. Please type your question again.",
    },
    "retired_successor": {
        "vi": "Thủ tục “{title}” không còn áp dụng; thay vào đó là thủ tục dưới đây.",
        "en": "The procedure “{title}” no longer applies; the one below replaces it.",
    },
    "retired": {
        "vi": "Thủ tục “{title}” không còn áp dụng. Bạn hãy hỏi lại, hoặc gặp cán bộ để được hướng dẫn.",
        "en": "The procedure “{title}” no longer applies. Please ask again, or talk to an official.",
    },
    "apology_ack": {
        "vi": "Chúng tôi xin lỗi: yêu cầu {code} của bạn chưa được cán bộ tiếp nhận đúng hạn ({deadline}). "
        "Yêu cầu đã được báo cho lãnh đạo đơn vị; bạn sẽ nhận được phản hồi trước {expected}.",
        "en": "We apologise: your ticket {code} was not taken up by an official in time (due {deadline}). "
        "The head of the department has been told; you will hear from us by {expected}.",
    },
    "apology_resolve": {
        "vi": "Chúng tôi xin lỗi: yêu cầu {code} của bạn chưa được trả lời đúng hạn ({deadline}). "
        "Yêu cầu đã được báo cho lãnh đạo đơn vị; bạn sẽ nhận được câu trả lời trước {expected}.",
        "en": "We apologise: your ticket {code} was not answered in time (due {deadline}). "
        "The head of the department has been told; you will have an answer by {expected}.",
    },
    "link_usage": {
        "vi": "Cán bộ nhận thông báo qua Telegram: lấy mã liên kết ở trang Thông báo của bảng điều khiển, "
        "rồi gửi /link MÃ cho tôi.",
        "en": "Staff get notifications on Telegram: take a link code from the dashboard's Notifications page, "
        "then send me /link CODE.",
    },
    "link_done": {
        "vi": "Đã liên kết Telegram với tài khoản {username}. Thông báo về yêu cầu sẽ được gửi đến đây; "
        "ngoài giờ làm việc chỉ gửi ngay các yêu cầu trễ hạn.",
        "en": "Telegram is now linked to the account {username}. Ticket notifications will come here; "
        "outside working hours only missed deadlines are sent at once.",
    },
    "link_wrong": {
        "vi": "Mã liên kết không đúng hoặc đã hết hạn (mã dùng được 15 phút, một lần). "
        "Hãy lấy mã mới ở trang Thông báo của bảng điều khiển.",
        "en": "The link code is wrong or has expired (a code works once, for 15 minutes). "
        "Take a new one from the dashboard's Notifications page.",
    },
    "link_telegram_only": {
        "vi": "Liên kết tài khoản cán bộ chỉ thực hiện được trong Telegram: gửi /link MÃ cho bot Telegram.",
        "en": "Linking a staff account works in Telegram only: send /link CODE to the Telegram bot.",
    },
    "card_check": {
        "vi": "Thông tin có thể thay đổi; hãy kiểm tra trên Cổng Dịch vụ công quốc gia trước khi nộp.",
        "en": "Details can change; please check the National Public Service Portal before filing.",
    },
}

CARD_LABELS: dict[str, dict[str, str]] = {
    "who": {"vi": "Ai được làm", "en": "Who may apply"},
    "documents": {"vi": "Hồ sơ cần có", "en": "Documents"},
    "fees": {"vi": "Lệ phí", "en": "Fees"},
    "processing_time": {"vi": "Thời gian giải quyết", "en": "Processing time"},
    "where_to_file": {"vi": "Nơi nộp", "en": "Where to file"},
    "steps": {"vi": "Các bước", "en": "Steps"},
    "online_link": {"vi": "Nộp trực tuyến", "en": "File online"},
    "legal_basis": {"vi": "Căn cứ pháp lý", "en": "Legal basis"},
    "conditions": {"vi": "Điều kiện", "en": "Conditions"},
    "result": {"vi": "Kết quả", "en": "Result"},
    "code": {"vi": "Mã thủ tục", "en": "Procedure code"},
    "last_verified": {"vi": "Cập nhật", "en": "Last verified"},
}

# The greeting's example questions, pressed as if typed (payload q:<index>).
EXAMPLE_QUESTIONS: dict[str, list[str]] = {
    "vi": ["Làm lại căn cước bị mất", "Lệ phí làm hộ chiếu", "Đăng ký khai sinh cần giấy tờ gì?"],
    "en": ["How do I replace a lost ID card?", "Passport fee", "Documents to register a birth"],
}
GREETING_TOPICS = ("identity", "civil-status")  # the most asked-about topics, offered in the greeting

TOPIC_LABELS: dict[str, dict[str, str]] = {
    "identity": {"vi": "🆔 Căn cước, hộ chiếu", "en": "🆔 ID cards, passports"},
    "civil-status": {"vi": "👪 Hộ tịch: khai sinh, kết hôn…", "en": "👪 Civil status: birth, marriage…"},
    "residence": {"vi": "🏠 Cư trú", "en": "🏠 Residence"},
    "business": {"vi": "🏪 Kinh doanh", "en": "🏪 Business"},
    "transport": {"vi": "🚗 Giao thông, phương tiện", "en": "🚗 Transport, vehicles"},
    "justice": {"vi": "⚖️ Tư pháp, chứng thực", "en": "⚖️ Justice, certification"},
    "social": {"vi": "🤝 Bảo hiểm, trợ cấp xã hội", "en": "🤝 Insurance, social benefits"},
    "land-construction": {"vi": "🏗️ Đất đai, xây dựng", "en": "🏗️ Land, construction"},
    "education": {"vi": "🎓 Giáo dục", "en": "🎓 Education"},
    "foreigners": {"vi": "🌏 Người nước ngoài", "en": "🌏 Foreigners"},
    "e-government": {"vi": "💻 Dịch vụ công trực tuyến", "en": "💻 Online public services"},
}


def topic_label(category: str, lang: str | None) -> str:
    """A topic's name in the citizen's language; a category we have no name for shows as it is."""
    return TOPIC_LABELS.get(category, {}).get(ui_lang(lang), category)


def ui_lang(lang: str | None) -> str:
    """The language the bot speaks: Vietnamese or English."""
    return "vi" if lang == "vi" else "en"


def say(key: str, lang: str | None, **values: object) -> str:
    """A bot sentence in the citizen's language, filled in."""
    return TEXTS[key][ui_lang(lang)].format(**values)
