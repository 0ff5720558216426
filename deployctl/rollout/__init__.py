"""Rollouts: pod and workload states, failure signals, one module per workload kind (``kinds``), what to judge in a
namespace (``tracking``), the watch, diagnosis, levels and waves.
"""
