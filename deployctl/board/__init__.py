"""The release board: its content (``model``) and its HTML and Markdown (``render``)."""
