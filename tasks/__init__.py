"""One Prefect task per stage: cache policy, artefact dir, progress. Thin wrappers over photoforge."""
