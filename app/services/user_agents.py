"""What a click's headers say about the visitor: bot or human, browser, OS, device class, referrer."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from ua_parser import parse

# Crawlers, link-preview fetchers and scripted clients. Recorded, but never counted as human.
_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|archiver|preview|fetch|facebookexternalhit|embedly|whatsapp|"
    r"skypeuripreview|bitlybot|headless|phantomjs|lighthouse|curl/|wget/|python-|httpx|aiohttp|"
    r"go-http-client|java/|okhttp|libwww|scrapy|node-fetch|axios/|postman",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|sm-t|sm-x", re.IGNORECASE)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "HarmonyOS"})
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD", "Debian", "OpenBSD", "macOS"}
)
MAX_USER_AGENT = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_HOST = 255


@functools.lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """True for crawlers, link previewers and scripted clients (and for a missing User-Agent)."""
    return not user_agent or _BOT.search(user_agent) is not None


@functools.lru_cache(maxsize=4096)
def classify(user_agent: str) -> tuple[str, str, str]:
    """(browser family, OS family, device class: bot, mobile, tablet, desktop or other)."""
    result = parse(user_agent[:MAX_USER_AGENT])
    browser = _printable(result.user_agent.family if result.user_agent else "") or "Other"
    os_family = _printable(result.os.family if result.os else "") or "Other"
    return browser[:64], os_family[:64], _device(user_agent, os_family, result.device)


def _printable(text: str) -> str:
    """`text` without control characters: families are copied from the User-Agent, and PostgreSQL
    refuses NUL in text (one such click would make every flush fail)."""
    return _CONTROL.sub("", text)


def _device(user_agent: str, os_family: str, device: object) -> str:
    if is_bot(user_agent) or getattr(device, "family", "") == "Spider":
        return "bot"
    if _TABLET.search(user_agent) or (os_family == "Android" and "Mobile" not in user_agent):
        return "tablet"
    if os_family in _MOBILE_OS or "Mobile" in user_agent:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"


def referrer_host(referrer: str | None) -> str:
    """The host of a Referer header ('' when absent or unusable); the full referrer is never kept."""
    if not referrer:
        return ""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    return "" if _CONTROL.search(host) else host[:MAX_HOST]
