"""The engine's own check of the MaxSize and QualityTarget extensions (the API checks first)."""

from __future__ import annotations

from anigraph.domain.templates import QUALITY_TARGET_RANGE
from anigraph.media.types import AnimateParams

QUALITY_TARGET_MIN, QUALITY_TARGET_MAX = QUALITY_TARGET_RANGE


def fit_problems(params: AnimateParams) -> list[str]:
    """What is out of range in the job's budget and quality target (empty when valid)."""
    problems = []
    if params.max_size < 0:
        problems.append("max_size must be 0 (no budget) or a positive number of bytes")
    target = params.quality_target
    if target != 0 and not QUALITY_TARGET_MIN <= target <= QUALITY_TARGET_MAX:
        problems.append(
            f"quality_target must be 0 (off) or in [{QUALITY_TARGET_MIN}, {QUALITY_TARGET_MAX}]"
        )
    return problems
