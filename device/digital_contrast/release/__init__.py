"""Release records (IEC 62304 5.8), written into the repository's releases/ folder."""
