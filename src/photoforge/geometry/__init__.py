"""Geometry: multi-view stereo, point clouds, surfaces."""
