"""allsmi: watch GPUs, CPUs and memory on one machine or a cluster, and record it all."""

__version__ = "0.1.0"
