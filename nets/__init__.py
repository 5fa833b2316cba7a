"""nets package of the SSD pipeline."""
