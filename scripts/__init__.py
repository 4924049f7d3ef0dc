"""Command-line jobs: the demo pipeline, the doctor, replay tools."""
