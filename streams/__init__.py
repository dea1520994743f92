"""HealthMate Pipeline streaming worker."""
