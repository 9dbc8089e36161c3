"""Worker process for the OTP race test: threads submit the same OTP at the same moment."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from flexnet.config import OtpSettings
from flexnet.db import Database, utcnow
from flexnet.otp.secrets import SecretBox
from flexnet.otp.verify import verify_yubico_otp


def race(
    url: str, master_key: bytes, otps: list[str], barrier: Any, threads: int, results: Any
) -> None:
    """Every thread verifies otps[i] right after all racers passed the barrier of round i."""
    database = Database.from_url(url)
    box = SecretBox(master_key)
    outcomes: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()

    def racer() -> None:
        for round_number, otp in enumerate(otps):
            barrier.wait()
            try:
                with database.session() as session:
                    reason = verify_yubico_otp(
                        session, otp, box=box, settings=OtpSettings(), now=utcnow()
                    ).reason.value
            except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
                reason = f"error:{type(error).__name__}"
            with lock:
                outcomes[(round_number, reason)] += 1

    workers = [threading.Thread(target=racer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    database.dispose()
    results.put(dict(outcomes))
