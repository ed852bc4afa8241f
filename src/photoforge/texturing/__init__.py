"""Texture baking: atlas rasterisation, photo sources, view selection, colour levelling, filling."""
