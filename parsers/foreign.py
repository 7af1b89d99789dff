"""Invoices from other AI providers, recognised so that the refusal can say whose they are."""

from __future__ import annotations

import re

# (provider as said to the customer, pattern on the document's text). Names, not layouts:
# enough to tell the customer what they sent, not to parse it.
_PROVIDERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("OpenAI", r"\bOpenAI,? (?:LLC|Ireland|OpCo)|\bopenai\.com\b|\bChatGPT\b"),
        ("Anthropic", r"\bAnthropic,? (?:PBC|Ireland)|\banthropic\.com\b"),
        ("Google Cloud", r"\bGoogle (?:Cloud|LLC|Ireland)|\bcloud\.google\.com\b"),
        ("Amazon Web Services", r"\bAmazon Web Services\b|\bAWS\b"),
        ("Microsoft Azure", r"\bMicrosoft (?:Azure|Corporation|Ireland)\b"),
        ("Cohere", r"\bCohere,? Inc\b|\bcohere\.com\b"),
        ("Groq", r"\bGroq,? Inc\b"),
        ("Together AI", r"\bTogether (?:AI|Computer)\b"),
        ("Hugging Face", r"\bHugging ?Face\b"),
    )
)
_MISTRAL = re.compile(r"\bMistral\s*AI\b|\bmistral\.ai\b", re.IGNORECASE)


def foreign_provider(text: str) -> str | None:
    """The other provider this document is from, when it names one and not Mistral."""
    if _MISTRAL.search(text):
        return None
    for name, pattern in _PROVIDERS:
        if pattern.search(text):
            return name
    return None


def refusal_for(provider: str) -> str:
    article = "an" if provider[0] in "AEIOU" else "a"
    return f"this is {article} {provider} invoice, not a Mistral one"
