"""Status-Server (RFC 5997): a proxy or load balancer asks whether flexnet serves.

FreeRADIUS checks its home servers with ``status_check = status-server``: a server
that does not answer is marked dead and is only brought back by an answer to a
Status-Server. The answer says "this server can decide": it is given only to a known
NAS client whose Message-Authenticator is valid (RFC 5997 section 3 requires one), and
only while the database answers, because without it no login can be decided and the
proxy should fail over. No user state is read or written, nothing is cached as a
duplicate (a Status-Server is idempotent and carries no login).
"""

from __future__ import annotations

from pyrad import packet as rp
from pyrad.dictionary import Dictionary
from sqlalchemy import text

from flexnet.clients import nas
from flexnet.db import Database
from flexnet.radius.packets import Port

STATUS_SERVER = rp.StatusServer


class StatusRefused(Exception):
    """The Status-Server is not answered; the message says why (for the log)."""


def answer(data: bytes, port: Port, client: nas.NasEntry, dictionary: Dictionary) -> bytes:
    """The signed answer: Access-Accept on the auth port, Accounting-Response on the
    accounting port (RFC 5997 section 3), or StatusRefused."""
    request: rp.AuthPacket | rp.AcctPacket
    try:
        if port is Port.AUTH:
            request = rp.AuthPacket(packet=data, secret=client.secret, dict=dictionary)
        else:
            request = rp.AcctPacket(packet=data, secret=client.secret, dict=dictionary)
    except rp.PacketError as error:
        raise StatusRefused(f"undecodable Status-Server: {error}") from None
    if not request.message_authenticator:
        raise StatusRefused("Status-Server without Message-Authenticator")
    if not request.verify_message_authenticator():
        raise StatusRefused("Status-Server with an invalid Message-Authenticator")
    reply = request.CreateReply()
    if port is Port.AUTH:
        reply.code = rp.AccessAccept
    return bytes(reply.ReplyPacket())


def check_database(database: Database) -> None:
    """One round trip to the database (SELECT 1); raises when it cannot be reached."""
    with database.reader() as session:
        session.execute(text("SELECT 1"))
