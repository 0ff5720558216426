"""Steps shared by use cases (``app.base`` holds the older ones): each module one step."""
