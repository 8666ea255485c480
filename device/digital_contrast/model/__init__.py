"""The enhancement network, its phantom training data, training and run tracking.

- `network`: `NetworkConfig`, `build_network`, input/output scaling the weights assume.
- `data`: phantom data manifest, MONAI transforms and cached dataset.
- `training`: `TrainingConfig`, `train`, `reference_config`, `smoke_config`.
- `tracking`: one MLflow run per training run.

Submodules are imported explicitly: torch, MONAI and MLflow load only where they are used.
"""
