"""Keys whose AES secret stays with an external Yubico validation service.

The answer must be signed with the configured API key and echo our OTP and nonce
(yubico-client checks both). A timeout, a bad signature or any other error is a reject.
"""

from __future__ import annotations

import logging

from yubico_client import Yubico
from yubico_client.yubico_exceptions import StatusCodeError

from flexnet.config import OtpSettings
from flexnet.otp.verify import OtpReason

log = logging.getLogger(__name__)


class RemoteValidator:
    def __init__(self, settings: OtpSettings) -> None:
        if not (settings.remote_urls and settings.remote_client_id and settings.remote_api_key):
            raise ValueError("remote validation is not configured")
        self._client = Yubico(
            settings.remote_client_id,
            settings.remote_api_key,  # base64, as the client library expects
            api_urls=settings.remote_urls,
            max_retries=1,
        )
        self._timeout = int(settings.remote_timeout)

    @classmethod
    def from_settings(cls, settings: OtpSettings) -> RemoteValidator | None:
        return cls(settings) if settings.remote_urls else None

    def check(self, otp: str) -> OtpReason:
        try:
            valid = self._client.verify(otp, timeout=self._timeout)
        except StatusCodeError as error:
            if error.status_code == "REPLAYED_OTP":
                return OtpReason.REPLAYED
            return OtpReason.BAD_OTP
        except Exception as error:  # noqa: BLE001 - fail closed on any failure of the service
            log.error("external OTP validation failed: %s", type(error).__name__)
            return OtpReason.BACKEND_ERROR
        return OtpReason.OK if valid is True else OtpReason.BAD_OTP
