"""preprocessing package of the SSD pipeline."""
