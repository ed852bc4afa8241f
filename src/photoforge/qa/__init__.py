"""Quality scores: images, poses, surfaces, glTF validation."""
