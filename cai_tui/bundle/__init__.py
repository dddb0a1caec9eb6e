"""Support bundles (``cai-tui bundle``): collect, scrub, pseudonymize, write a tar.gz (CAI-F5)."""

from .collect import BundleOptions, BundleReport, build_bundle
from .pseudonymize import Pseudonymizer
from .scrub import Scrubber

__all__ = ["BundleOptions", "BundleReport", "Pseudonymizer", "Scrubber", "build_bundle"]
