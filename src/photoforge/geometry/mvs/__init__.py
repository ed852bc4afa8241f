"""Multi-view stereo: photoforge's own plane sweep (PyTorch, CPU or GPU), COLMAP's PatchMatch (CUDA), fusion."""
