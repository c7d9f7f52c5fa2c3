"""``build_provider``: the one place that picks a provider from the settings.

Each implementation is imported only when chosen, so running the demo provider
never loads google-genai.
"""

from __future__ import annotations

from novawrite.providers.base import Provider
from novawrite.settings import Settings, SettingsError


def build_provider(settings: Settings) -> Provider:
    if settings.provider == "gemini":
        if not settings.gemini_api_key:
            raise SettingsError("NOVAWRITE_PROVIDER=gemini needs GEMINI_API_KEY (or GOOGLE_API_KEY)")
        from novawrite.providers.gemini import GeminiProvider

        return GeminiProvider(
            api_key=settings.gemini_api_key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout=settings.provider_timeout_seconds,
        )
    if settings.provider == "openai":
        if not settings.openai_base_url:
            raise SettingsError("NOVAWRITE_PROVIDER=openai needs NOVAWRITE_OPENAI_BASE_URL")
        from novawrite.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=settings.openai_api_key,
            timeout=settings.provider_timeout_seconds,
        )
    if settings.provider == "demo":
        from novawrite.providers.demo import DemoProvider

        return DemoProvider(delay_ms=settings.demo_delay_ms)
    raise SettingsError(f"Unknown provider {settings.provider!r}: use gemini, openai or demo")
