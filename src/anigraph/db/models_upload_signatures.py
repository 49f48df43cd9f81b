"""One-time client upload signatures that have been spent.

A signature signed with ``oneTimeValid=1`` may start exactly one ApplyUploadUGC. The primary key
(a unique index) on the signature's fingerprint is what makes that hold under concurrency: two
requests racing with the same signature both try to insert the same row, and the database lets
only one transaction commit it. A row is worthless once the signature has expired (verification
refuses it anyway), so ``expires_at`` is indexed for purging.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from anigraph.db.models import Base


class UploadSignatureUse(Base):
    """A spent one-time signature: its fingerprint, who signed it and until when it was valid."""

    __tablename__ = "upload_signature_uses"

    # SHA-256 hex of the decoded signature bytes (digest and plaintext): the same signature in a
    # different base64 spelling (padding, line breaks) still maps to the same row.
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_id: Mapped[str] = mapped_column(String(64))
    sub_app_id: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
