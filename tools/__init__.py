"""Developer tools outside the runtime package: not copied into worker images, installed with [dev]."""
