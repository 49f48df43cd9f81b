"""How a transfer reports progress, so that the library stays free of any terminal code."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told when a long phase starts, as it advances, and when it ends."""

    def start(self, description: str, total: int, *, in_bytes: bool) -> None: ...

    def advance(self, amount: int) -> None:
        """``amount`` more rows or bytes done; may be called from several threads."""
        ...

    def finish(self) -> None: ...


class Silent:
    """Progress nobody watches (tests, scripts)."""

    def start(self, description: str, total: int, *, in_bytes: bool) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass
