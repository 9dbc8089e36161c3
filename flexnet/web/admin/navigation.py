"""The admin UI's navigation: groups in one row, the current group's pages in a second.

Which links a staff member sees comes from the route table (``ROUTE_ROLES``, filled by
``@allowed``): a page their role may not open is not offered, and the navigation never
states a role rule of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g, request, url_for

from flexnet.web.admin import ROUTE_ROLES, blueprint


@dataclass(frozen=True)
class Item:
    label: str
    endpoint: str
    # Further pages that belong to this item (a detail page of a list, a dialog).
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    label: str
    items: tuple[Item, ...]


def _e(name: str) -> str:
    return f"{blueprint.name}.{name}"


GROUPS = (
    Group("Übersicht", (Item("Übersicht", _e("dashboard"), (_e("search"),)),)),
    Group(
        "Praxen",
        (
            Item(
                "Betriebsstätten",
                _e("practices"),
                tuple(
                    _e(name)
                    for name in (
                        "practice",
                        "lock_dialog",
                        "lock",
                        "unlock_practice",
                        "terminate",
                        "exception",
                        "key_assign",
                        "user_new",
                        "practice_end",
                        "terms_accept",
                        "key_replace",
                        "practice_edit",
                        "takeover_dialog",
                        "practice_end",
                        "terms_accept",
                        "privacy_practice",
                        "termination_correct",
                        "termination_withdraw",
                        "practice_reactivate",
                    )
                ),
            ),
            Item(
                "Benutzer",
                _e("users"),
                tuple(
                    _e(name)
                    for name in (
                        "user",
                        "unlock_user",
                        "user_reissue",
                        "user_exception",
                        "user_exception_end",
                        "user_edit",
                        "user_end",
                        "privacy_user",
                    )
                ),
            ),
            Item("Neue Betriebsstätte", _e("practice_new")),
            Item("Nutzungsbedingungen", _e("terms_page"), (_e("terms_publish"),)),
            Item("Benutzer-Import", _e("user_import")),
            Item("Register", _e("registry_import")),
            Item("Ausnahmen", _e("exceptions"), (_e("exception_end"),)),
        ),
    ),
    Group(
        "Yubikeys",
        (
            Item("Alle Yubikeys", _e("key_list"), (_e("key_detail"), _e("key_resync"))),
            Item("Lager und Import", _e("keys"), (_e("key_return"), _e("keys_import"))),
            Item("Nicht zurückgegeben", _e("keys_overdue")),
        ),
    ),
    Group(
        "Briefe",
        (
            Item(
                "Versandläufe",
                _e("letters"),
                (
                    _e("mail_run"),
                    _e("letters_dispatched"),
                    _e("letters_cancel"),
                    _e("letter_reprint"),
                ),
            ),
            Item("Unzustellbar zurück", _e("letter_returned")),
        ),
    ),
    Group("Anfragen", (Item("Anfragen", _e("requests"), (_e("request_detail"),)),)),
    Group(
        "Berichte",
        (
            Item("Berichte", _e("report_page")),
            Item("Gebühren", _e("fee_list"), (_e("fee_invoiced"), _e("fee_paid"), _e("fee_waive"))),
        ),
    ),
    Group(
        "Protokolle",
        (
            Item("Anmeldeprotokoll", _e("logins")),
            Item("VPN-Sitzungen", _e("vpn_sessions"), (_e("vpn_disconnect"),)),
            Item("Revisionsprotokoll", _e("audit_trail"), (_e("audit_verify"),)),
        ),
    ),
    Group(
        "Verwaltung",
        (
            Item("Mitarbeiter", _e("staff_page"), (_e("staff_role"), _e("staff_password_reset"))),
            Item("Clients", _e("clients")),
            Item("Einstellungen", _e("settings_view")),
        ),
    ),
)


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool


@dataclass(frozen=True)
class Navigation:
    groups: list[Link]
    pages: list[Link]  # of the current group (empty if it has one page only)


def _may_open(endpoint: str) -> bool:
    roles = ROUTE_ROLES.get(endpoint)
    return roles is not None and g.staff.role in roles


def navigation() -> Navigation | None:
    """The links for the signed-in staff member on this page, or None (no one signed in)."""
    if g.get("staff") is None:
        return None
    endpoint = request.endpoint or ""
    groups: list[Link] = []
    pages: list[Link] = []
    for group in GROUPS:
        items = [item for item in group.items if _may_open(item.endpoint)]
        if not items:
            continue
        inside = any(endpoint == item.endpoint or endpoint in item.also for item in items)
        groups.append(Link(group.label, url_for(items[0].endpoint), inside))
        if inside and len(items) > 1:
            pages = [
                Link(
                    item.label,
                    url_for(item.endpoint),
                    endpoint == item.endpoint or endpoint in item.also,
                )
                for item in items
            ]
    return Navigation(groups, pages)


@blueprint.context_processor
def _navigation() -> dict[str, Any]:
    return {"navigation": navigation()}
