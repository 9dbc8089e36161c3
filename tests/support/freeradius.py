"""FreeRADIUS 3.2 (Debian's ``freeradius``) as a proxy in front of flexnet, for tests.

It runs as a foreground process (``freeradius -f -xx -l stdout``) with a configuration
written into a temp folder, on free loopback ports; the system's /etc/freeradius and
any system service are never touched. The home server is flexnet (auth port and, as
FreeRADIUS requires for ``auth+acct``, the accounting port right after it), checked
with ``status_check = status-server`` as FreeRADIUS ships it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import port_for

START_SECONDS = 20.0
CLIENT_SECRET = "proxy-client-secret-0123456789"

RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
raddbdir = {dir}
confdir = {dir}
modconfdir = {dir}
logdir = {dir}
run_dir = {dir}
db_dir = {dir}
radacctdir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/radiusd.pid
name = freeradius
max_request_time = 10
cleanup_delay = 2
max_requests = 4096
hostname_lookups = no
log {{
    destination = stdout
    auth = no
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}
proxy_requests = yes
proxy server {{
    default_fallback = no
}}
home_server flexnet {{
    type = auth+acct
    ipaddr = 127.0.0.1
    port = {home_port}
    secret = {home_secret}
{home_tls}    require_message_authenticator = yes
    response_window = {response_window}
    zombie_period = 1
    status_check = status-server
    check_interval = 6
    check_timeout = 2
    num_answers_to_alive = 3
}}
home_server_pool flexnet_pool {{
    type = fail-over
    home_server = flexnet
}}
realm flexnet {{
    auth_pool = flexnet_pool
    acct_pool = flexnet_pool
    nostrip
}}
client nas {{
    ipaddr = 127.0.0.1
    secret = {client_secret}
    require_message_authenticator = no
}}
thread pool {{
    start_servers = 2
    max_servers = 4
    min_spare_servers = 1
    max_spare_servers = 4
}}
modules {{
}}
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {auth_port}
    }}
    listen {{
        type = acct
        ipaddr = 127.0.0.1
        port = {acct_port}
    }}
    authorize {{
        update control {{
            &Proxy-To-Realm := "flexnet"
        }}
    }}
    authenticate {{
    }}
    preacct {{
        update control {{
            &Proxy-To-Realm := "flexnet"
        }}
    }}
    accounting {{
    }}
    pre-proxy {{
        update proxy-request {{
            &Message-Authenticator := 0x00
        }}
    }}
    post-proxy {{
    }}
}}
"""

# RADIUS over TLS to the home server (RFC 6614), as docs/INTEROP.md shows it.
TLS_HOME = """\
    proto = tcp
    tls {{
        certificate_file = {0}
        private_key_file = {1}
        ca_file = {2}
        fragment_size = 8192
    }}
"""


@dataclass
class FreeRadiusProxy:
    directory: Path
    auth_port: int
    acct_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.directory / "freeradius.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def home_ports() -> int:
    """A free port whose successor is free too (FreeRADIUS: acct = auth + 1)."""
    for _ in range(50):
        port = port_for.select_random()
        if port < 65535 and port_for.is_available(port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


@contextmanager
def proxy(
    directory: Path,
    *,
    home_port: int,
    home_secret: str,
    home_tls: tuple[Path, Path, Path] | None = None,
    response_window: int = 5,
) -> Iterator[FreeRadiusProxy]:
    """FreeRADIUS proxying everything to flexnet at 127.0.0.1:home_port (and +1); with
    ``home_tls`` (client certificate, its key, the CA of flexnet's certificate) over
    RADIUS over TLS to flexnet's TLS port ``home_port`` instead (secret ``radsec``).

    ``response_window``: seconds the proxy waits for flexnet before it gives up on the
    request and answers Access-Reject itself. It must cover one argon2id verify on a
    loaded CI machine (1 s did not, on PostgreSQL) and stay below radclient's ``-t 6``."""
    binary = shutil.which("freeradius") or "/usr/sbin/freeradius"
    directory.mkdir(parents=True, exist_ok=True)
    running = FreeRadiusProxy(directory, port_for.select_random(), port_for.select_random())
    (directory / "dictionary").write_text("$INCLUDE /usr/share/freeradius/dictionary\n")
    (directory / "radiusd.conf").write_text(
        RADIUSD_CONF.format(
            dir=directory,
            home_port=home_port,
            home_secret=home_secret,
            home_tls="" if home_tls is None else TLS_HOME.format(*home_tls),
            response_window=response_window,
            client_secret=CLIENT_SECRET,
            auth_port=running.auth_port,
            acct_port=running.acct_port,
        )
    )
    with running.log_path.open("ab") as log_file:
        running.process = subprocess.Popen(
            [binary, "-f", "-xx", "-l", "stdout", "-d", str(directory)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while "Ready to process requests" not in running.log():
            if running.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"FreeRADIUS did not start:\n{running.log()[-4000:]}")
            time.sleep(0.05)
        yield running
    finally:
        running.process.terminate()
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
