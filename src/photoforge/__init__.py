"""photoforge: photos or video in, a 3D asset out. The library: stage code, no Prefect import."""

__version__ = "0.1.0"
