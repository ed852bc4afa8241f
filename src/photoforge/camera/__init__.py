"""Cameras: intrinsics priors, registered views, pose estimation (pycolmap)."""
