"""Terraform: argv builders and the adapter, its errors, an environment's workspace and saved plans, the state
bucket.
"""
