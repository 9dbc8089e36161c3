"""A visitor of a served flexnet over real HTTP, at a client address of its own.

The address travels in ``X-Forwarded-For`` as nginx sets it; the app trusts it with
``FLEXNET_PROXIES=1``, so one test can play strangers and owners at many addresses.
"""

from __future__ import annotations

import re

import pyotp
import requests


class Visitor:
    """One browser: its own cookies, its own client address."""

    def __init__(self, base: str, address: str | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False  # never an HTTP proxy from the environment
        if address is not None:
            self.http.headers["X-Forwarded-For"] = address

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=30)

    def csrf(self, path: str) -> str:
        page = self.get(path).text
        found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert found, page
        return found.group(1)

    def post(self, path: str, form_page: str | None = None, **fields: str) -> requests.Response:
        """Fill the form of ``form_page`` (default: ``path``) and send it."""
        data = {"csrf_token": self.csrf(form_page or path), **fields}
        return self.http.post(self.base + path, data=data, allow_redirects=False, timeout=30)

    def staff_password_step(self, username: str, password: str) -> int:
        """The first step of the staff sign-in; 302 means the password was accepted."""
        return self.post("/admin/login", username=username, password=password).status_code

    def staff_enrol_attempt(self, enrolment_code: str) -> requests.Response:
        """After the password step of a first sign-in: the enrolment page's form, with
        the first code of an app set up from the seed shown there."""
        page = self.get("/admin/login/enrol").text
        seed = re.search(r'<code class="seed">([A-Z2-7 ]+)</code>', page)
        assert seed, page
        secret = seed.group(1).replace(" ", "")
        return self.post(
            "/admin/login/enrol",
            code=pyotp.TOTP(secret).now(),
            enrolment_code=enrolment_code,
        )

    def staff_enrol(self, enrolment_code: str) -> None:
        """Enrol an authenticator app with the enrolment code an admin handed out."""
        done = self.staff_enrol_attempt(enrolment_code)
        assert done.status_code == 302, done.text
