"""What every process of the platform (worker, CLI, drills, benchmarks) shares to reach Temporal."""
