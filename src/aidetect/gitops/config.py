"""Promotion settings (``configs/promotion.yaml``, env ``AIDETECT_PROMOTION__<FIELD>``, CLI flags)."""

from __future__ import annotations

from dataclasses import dataclass

from aidetect.errors import ConfigError


@dataclass
class PromotionConfig:
    model_name: str = ""
    manifests_dir: str = "manifests"
    remote: str = "origin"
    base_branch: str = "main"
    canary_weight: int = 10
    artifacts_destination: str = ""
    github_api_url: str = "https://api.github.com"
    github_web_url: str = "https://github.com"
    github_repository: str = ""
    token_env: str = "GITHUB_TOKEN"

    def validate(self) -> None:
        if not 1 <= self.canary_weight <= 100:
            raise ConfigError(f"canary_weight: must be 1..100, got {self.canary_weight}")
        if not self.remote or not self.base_branch:
            raise ConfigError("remote: and base_branch: must not be empty")


def load_promotion_config(path: str | None = None, overrides: dict | None = None) -> PromotionConfig:
    from aidetect.config import load

    return load(PromotionConfig, "promotion", path=path, overrides=overrides)
