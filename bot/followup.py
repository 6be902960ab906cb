"""Follow-up questions: which part of a card a message asks for, and whether it names anything else.

A citizen who has just read the passport card and types "lệ phí bao nhiêu?" or "where do I file?" asks about that
procedure; "thế còn đăng ký kết hôn?" names another one. Both are read from the folded text (no diacritics, lower
case), so "le phi bao nhieu" and "lệ phí bao nhiêu" are the same question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import clean, fold

# Phrases per part of a card, folded. The first part whose phrase occurs wins: the order puts time before fee
# ("how much time" is a time question), online before where ("nộp online ở đâu") and the specific before the general.
ASPECT_PHRASES: dict[str, tuple[str, ...]] = {
    "processing_time": (
        "bao lau", "mat bao lau", "may ngay", "mat may ngay", "mat bao nhieu ngay", "bao nhieu ngay",
        "thoi gian giai quyet", "thoi gian xu ly",
        "thoi han", "thoi gian", "khi nao co ket qua", "khi nao nhan", "bao gio co", "bao gio nhan",
        "how long", "how many days", "how much time", "processing time", "when will i get", "when do i get",
        "how soon",
    ),
    "fees": (
        "le phi", "phi", "bao nhieu tien", "het bao nhieu", "het bao nhieu tien", "mat phi", "mat tien",
        "mat bao nhieu", "ton bao nhieu", "chi phi", "gia bao nhieu", "mien phi", "tien", "fee", "fees", "cost",
        "costs", "how much", "price", "charge", "pay", "free",
    ),
    "online_link": (
        "truc tuyen", "online", "qua mang", "dich vu cong", "link", "website", "trang web", "tren mang",
        "internet",
    ),
    "where_to_file": (
        "o dau", "noi nop", "nop tai", "lam tai", "dia chi", "co quan nao", "dia diem", "cho nao", "noi nao",
        "where", "which office", "what office", "address",
    ),
    "documents": (
        "giay to", "ho so", "can gi", "can nhung gi", "can mang", "mang theo", "thanh phan", "to khai",
        "mau don", "don mau", "bieu mau", "documents", "document", "papers", "paperwork", "what do i need",
        "what should i bring", "bring", "form", "forms",
    ),
    "who": (
        "ai duoc", "ai co the", "ai phai", "doi tuong", "dieu kien", "co duoc khong", "who can", "who may",
        "who is eligible", "eligible", "eligibility", "requirements", "conditions",
    ),
    "legal_basis": (
        "can cu phap ly", "can cu", "van ban", "nghi dinh", "thong tu", "luat nao", "quy dinh nao",
        "theo luat", "legal basis", "which law", "law", "decree", "regulation",
    ),
    "steps": (
        "trinh tu", "cac buoc", "quy trinh", "buoc nao", "tung buoc", "steps", "step by step", "process",
    ),
}

# Words that carry no procedure of their own: question words, particles, pronouns, politeness, and the words a
# follow-up uses to point back ("còn", "thế còn", "what about", "it"). Vietnamese ones are matched as written when a
# word has its diacritics — "đó" (that) is filler, "đỏ" of "sổ đỏ" (the land certificate) is not — and folded when it
# has none.
_FILLER_VI = """
    à ạ á a ah ơi ôi vậy thế thì sao còn nữa nhé nha không ko k gì nào này đó kia nhỉ hả ừ ok
    tôi mình em anh chị bạn cho hỏi xin cảm ơn làm giúp với được cần phải muốn biết
    là có bao nhiêu như nào khi giờ và hay hoặc của tại tải trong trên để thủ tục việc nộp đăng ký kí hết mẫu nhận
    những các gồm thực hiện mỗi nó chuẩn bị
"""
_FILLER_EN = """
    what about and how is are the a an for of to do does did i me my we you it its this that there please tell
    can could would should will much many in on at with need get file submit then also ok okay thanks thank hi
    hello take takes apply needed required
"""
FILLER_VI = frozenset(_FILLER_VI.split())
FILLER_FOLDED = frozenset({fold(w) for w in FILLER_VI} | set(_FILLER_EN.split()))

REFERS_BACK = ("con ", "the con", "vay con", "thi sao", "what about", "how about", "and the ", "and what")
# Words that point at what was just discussed: "how much is it?", "làm nó ở đâu", "thủ tục này".
POINTERS = frozenset({"it", "its", "this", "that", "them", "nó", "này", "đó"})
_PHRASES = sorted(
    {(name, tuple(p.split())) for name, phrases in ASPECT_PHRASES.items() for p in phrases},
    key=lambda item: -len(item[1]),  # "hết bao nhiêu" goes whole, not as "bao nhiêu" leaving "hết"
)
_ORDER = list(ASPECT_PHRASES)


@dataclass(frozen=True)
class FollowUp:
    """What a message says about the card of the conversation: the part it asks for, and what else it names."""

    aspect: str | None
    rest: tuple[str, ...]  # words (folded) left once the part's phrases and filler are taken out
    refers_back: bool
    topic: str = ""  # the message without the part's phrases: what names the procedure, to search for

    @property
    def names_nothing_else(self) -> bool:
        """Only a part and filler: it can be about nothing but the procedure already being discussed."""
        return not self.rest


def read_follow_up(text: str) -> FollowUp:
    """The part of a card a message asks for (None: none named), and the words that could name a procedure."""
    words = re.sub(r"[^\w]+", " ", clean(text).lower()).split()
    folded = [fold(w) for w in words]
    taken = [False] * len(words)
    named: list[str] = []
    for name, phrase in _PHRASES:
        size = len(phrase)
        for i in range(len(folded) - size + 1):
            if tuple(folded[i : i + size]) == phrase and not any(taken[i : i + size]):
                taken[i : i + size] = [True] * size
                named.append(name)
    aspect = min(named, key=_ORDER.index) if named else None
    rest = tuple(
        f for w, f, gone in zip(words, folded, taken, strict=True) if not gone and not _filler(w, f) and not f.isdigit()
    )
    padded = f" {' '.join(folded)} "
    points = any(w in POINTERS for w in words)
    topic = " ".join(w for w, gone in zip(words, taken, strict=True) if not gone)
    return FollowUp(aspect, rest, points or any(f" {marker}" in padded for marker in REFERS_BACK), topic)


def _filler(word: str, folded: str) -> bool:
    return word in FILLER_VI if word != folded else folded in FILLER_FOLDED
