"""Writers of official checkpoint layouts, used only by the tests to make their files."""
