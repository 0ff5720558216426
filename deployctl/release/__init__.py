"""What a release is made of: values files and their edits, chart values, the changelog, drift, change windows, the CI
pipeline's steps.
"""
