"""The Qt application: a thin layer of windows, widgets, workers and undo commands."""
