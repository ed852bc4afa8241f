"""Rendering by ray casting: the one place photoforge casts rays."""
