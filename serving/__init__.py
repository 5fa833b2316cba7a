"""serving package of the SSD pipeline."""
