"""Developer tools for kptui: the kernel lab and rule generators used by samples and tests (not shipped)."""
