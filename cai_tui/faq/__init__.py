"""FAQ knowledge base (``assets/faq/*.yaml``) and the matcher that turns a failing service's evidence into findings."""

from .kb import FaqError, KnowledgeBase, default_kb, load_kb
from .matcher import Evidence, Finding, Observation, lines_from_text, match, service_of
from .model import SERVICES, Bilingual, FaqEntry, Pattern

__all__ = [
    "SERVICES",
    "Bilingual",
    "Evidence",
    "FaqEntry",
    "FaqError",
    "Finding",
    "KnowledgeBase",
    "Observation",
    "Pattern",
    "default_kb",
    "lines_from_text",
    "load_kb",
    "match",
    "service_of",
]
