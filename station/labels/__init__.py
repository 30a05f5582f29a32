"""Labels: layouts (layout.py), one label model (compose.py) drawn as PNG, PDF or ZPL, and printers.

What the other parts call: ``print_label`` (the operator page, ``rig run --label``), ``print_batch``
(``station labels``) and ``preview_png`` (a label on a screen, nothing recorded).
"""

from .printing import PrintResult, preview_png, print_batch, print_label

__all__ = ["PrintResult", "preview_png", "print_batch", "print_label"]
