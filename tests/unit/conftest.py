"""Hypothesis profiles: "dev" (default, quick) and "ci" (thorough). Pick with HYPOTHESIS_PROFILE.

Loading a profile sets hypothesis's defaults for the whole pytest run; tests elsewhere that need
other settings should pass their own @settings.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=2000, deadline=None)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
