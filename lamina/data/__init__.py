"""Reading sources and splitting them into train/validation/test."""
