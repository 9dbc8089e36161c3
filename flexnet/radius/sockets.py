"""The listening sockets of the RADIUS server: UDP for RADIUS, TCP for RADIUS over TLS."""

from __future__ import annotations

import ipaddress
import socket


def udp_socket(address: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound UDP socket (see :func:`bound_socket`)."""
    return bound_socket(address, port, socket.SOCK_DGRAM, reuse_port=reuse_port)


def tcp_socket(address: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound TCP socket, not yet listening (see :func:`bound_socket`)."""
    return bound_socket(address, port, socket.SOCK_STREAM, reuse_port=reuse_port)


def bound_socket(
    address: str, port: int, kind: socket.SocketKind, *, reuse_port: bool
) -> socket.socket:
    """A bound socket, UDP or TCP (not yet listening). On ``::`` it takes IPv4 too,
    whatever the system's default (``net.ipv6.bindv6only``): IPv4 concentrators then
    arrive as ``::ffff:a.b.c.d``, which ``unmapped`` turns back into the address their
    NAS entry names."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:  # a restart binds again over connections closing
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            dual = _is_any(address)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _is_any(address: str) -> bool:
    try:
        return ipaddress.IPv6Address(address) == ipaddress.IPv6Address("::")
    except ValueError:
        return False  # bind() names the problem
