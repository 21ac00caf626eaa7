"""Ready-to-run studies for the paper's benchmark cases, and the learning-curve replay."""
