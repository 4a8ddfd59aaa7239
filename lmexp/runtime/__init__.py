"""Where and in what precision a job runs: device choice and GPU slots, RNG state, autocast,
and the CPU allocator settings."""
