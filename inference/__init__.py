"""sonoreview inference: models and image computation for prenatal ultrasound.

Pure computation on arrays. This package never imports Django or ``webapp``; the web application
calls into it, never the other way round.
"""

__all__: list[str] = []
