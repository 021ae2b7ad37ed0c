"""What a run writes: output directories, feature and frame files, metadata.json, comparison."""
