"""View selection per face: the best-scoring photo, smoothed so neighbouring faces agree.

mvs-texturing solves this MRF with graph cuts; we use iterated conditional modes over the face
adjacency (a Potts penalty per neighbour with another label): few lines with scipy.sparse, and
in practice it removes the speckle that makes seams. Noted as a place to do better.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def face_adjacency(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """F x F adjacency of faces sharing an edge, welding vertices split at UV seams by position."""
    _, welded = np.unique(np.round(vertices, 6), axis=0, return_inverse=True)
    f = welded.reshape(-1)[faces]
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    edges.sort(axis=1)
    face_of_edge = np.tile(np.arange(len(faces)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, face_of_edge = edges[order], face_of_edge[order]
    same = np.all(edges[1:] == edges[:-1], axis=1)
    a, b = face_of_edge[:-1][same], face_of_edge[1:][same]
    data = np.ones(2 * len(a))
    return sp.csr_matrix((data, (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(len(faces), len(faces)))


def select_views(
    face_scores: np.ndarray, adjacency: sp.csr_matrix, smoothness: float, iterations: int = 8
) -> np.ndarray:
    """Label per face (-1: seen by no view). face_scores is F x V (0 where the view does not see the face)."""
    best = face_scores.max(axis=1)
    seen = best > 0
    data = np.where(face_scores > 0, face_scores / np.maximum(best, 1e-12)[:, None], -np.inf)
    labels = np.argmax(data, axis=1)
    views = face_scores.shape[1]
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    for _ in range(iterations):
        one_hot = sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), views))
        agreeing = (adjacency @ one_hot).toarray()  # neighbours already on each label
        energy = data - smoothness * (degree[:, None] - agreeing)
        new = np.argmax(energy, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return np.where(seen, labels, -1)
