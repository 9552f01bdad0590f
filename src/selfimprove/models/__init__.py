"""Built-in real models, converted from files that pip installs (no model hub): ``smollm2``.

The character-level model trained here, ``tiny``, lives in ``selfimprove.tiny``; ``tiny.models.resolve_model``
resolves every built-in name, these included.
"""

BUILTIN = ("smollm2",)
