"""This machine: host counters (psutil), NVML, processes."""
