"""Staff's search over practices, users and keys (admin UI).

Names and cities are compared folded (``flexnet.accounts.folding``: case, umlauts in both
spellings, accents) against the search keys stored with each practice and user; BSNR,
username, LANR and key serial as typed. Every look-up is bounded by ``limit``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flexnet import labels
from flexnet.accounts.folding import fold
from flexnet.models import Practice, Token, User

LIMIT = 50


@dataclass(frozen=True)
class Hit:
    kind: str  # what matched, in German: BSNR, Praxis, Ort, Benutzer, Name, LANR, Yubikey
    bsnr: str
    practice_name: str
    detail: str
    username: str | None = None  # a user's page to link to


def search(session: Session, query: str, *, limit: int = LIMIT) -> list[Hit]:
    """Practices by BSNR (prefix), name or city (part); users by username (prefix), name
    (part) or LANR; keys by serial. At most ``limit`` hits."""
    text = " ".join(query.split())
    folded = fold(text)
    if not folded:
        return []
    hits = _practices(session, text, folded, limit) + _users(session, text, folded, limit)
    tokens = session.execute(
        select(Token, Practice).join(Practice).where(Token.serial == text).limit(limit)
    )
    for token, practice in tokens:
        hits.append(Hit("Yubikey", practice.bsnr, practice.name, f"Seriennummer {token.serial}"))
    return hits[:limit]


def _practices(session: Session, text: str, folded: str, limit: int) -> list[Hit]:
    found = session.scalars(
        select(Practice)
        .where(
            or_(
                Practice.bsnr.startswith(text, autoescape=True),
                Practice.search_key.contains(folded, autoescape=True),
            )
        )
        .order_by(Practice.bsnr)
        .limit(limit)
    )
    hits = []
    for practice in found:
        if practice.bsnr.startswith(text):
            kind = "BSNR"
        else:
            kind = "Praxis" if folded in fold(practice.name) else "Ort"
        status = labels.PRACTICE_STATUS_LABEL[practice.status]
        detail = status if kind != "Ort" else f"{practice.city}; {status}"
        hits.append(Hit(kind, practice.bsnr, practice.name, detail))
    return hits


def _users(session: Session, text: str, folded: str, limit: int) -> list[Hit]:
    found = session.execute(
        select(User, Practice)
        .join(Practice)
        .where(
            or_(
                User.username.startswith(folded, autoescape=True),
                User.search_key.contains(folded, autoescape=True),
                User.lanr == text,
            )
        )
        .order_by(User.username)
        .limit(limit)
    )
    hits = []
    for user, practice in found:
        if user.lanr == text:
            kind = "LANR"
        else:
            kind = "Benutzer" if user.username.startswith(folded) else "Name"
        detail = f"{user.username} ({labels.USER_STATUS_LABEL[user.status]})"
        if user.name:
            detail = f"{user.name}: {detail}"
        hits.append(Hit(kind, practice.bsnr, practice.name, detail, user.username))
    return hits
