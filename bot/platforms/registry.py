"""Every platform the server can run, and the two things it does with them: check the settings
at start-up and build the configured ones. The only module of bot.platforms that names them."""

from __future__ import annotations

from bot.config import ConfigError, Settings
from bot.platforms import gerrit, github
from bot.platforms.base import Platform, PlatformSpec

PLATFORMS: tuple[PlatformSpec, ...] = (github.SPEC, gerrit.SPEC)


def enabled(settings: Settings) -> list[PlatformSpec]:
    return [spec for spec in PLATFORMS if spec.enabled(settings)]


def check_startup(settings: Settings) -> None:
    """Refuse to start on a configuration that cannot work, saying what to set."""
    specs = enabled(settings)
    if not specs:
        raise ConfigError(
            "nothing to serve: configure GitHub (PATCHWARDEN_GITHUB_WEBHOOK_SECRET and PATCHWARDEN_GITHUB_TOKEN "
            "or PATCHWARDEN_GITHUB_APP_ID + PATCHWARDEN_GITHUB_PRIVATE_KEY_FILE) or Gerrit (PATCHWARDEN_GERRIT_URL)"
        )
    for spec in specs:
        spec.check(settings)


def build_platforms(settings: Settings) -> dict[str, Platform]:
    return {spec.name: spec.build(settings) for spec in enabled(settings)}
