"""datasets package of the SSD pipeline."""
