"""deployment package of the SSD pipeline."""
