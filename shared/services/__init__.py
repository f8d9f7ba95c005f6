"""Use cases. Each reads like the story it implements and takes its dependencies as arguments."""
