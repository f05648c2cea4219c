"""Building images: the base when no registry has it, the BuildKit build and its progress."""
