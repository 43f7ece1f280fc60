"""Recommendations, the face: ``commands.py`` is what the CLI's ``recommend`` and ``similar`` call, and ``lamina
recommend`` / ``python -m lamina.recommend`` print their tables. The model and its training live below, in
``lamina.ranking``.
"""
