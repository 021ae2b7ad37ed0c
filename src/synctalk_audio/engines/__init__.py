"""The engines every feature mode runs on: batch (`pipeline`), streaming, block by block."""
