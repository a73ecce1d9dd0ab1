"""Request (``*In``) and response (``*Out``) models, kept apart so the API never echoes what it was sent."""
